"""Learn policies, evaluate them off-policy, promote the better one: the services behind
``tummler learn`` and ``tummler evaluate``.

Over a logged-bandit file (``--log``): a team brings the decision logs of any tool
(docs/logged-bandit-format.md) and sees what tummler would have done. Over the store: each
objective's policy learns from the outcomes of the decisions it made.

=========================  ========================================================================
module                     job
=========================  ========================================================================
``policy_file``            the policy file: :class:`LearnedPolicy`, saved and loaded as JSON
``from_log``               fitting a policy on a logged-bandit file (``learn --log``)
``logged``                 the store's logged decisions, with rewards and the contexts plans saw
``store_learning``         the next version of each objective's policy (``learn``)
``warm_start``             the first learned version fitted on the legacy sends, informed prior
``evaluation``             off-policy evaluation of candidates on a log file
``store_evaluation``       off-policy evaluation of candidates on the store's logged decisions
``exploration``            a policy that explores, as deployed against its greedy twin
``policy_table``           a policy given as a probability table (per action or segment)
``promotion``              promoting a version on the evidence of an evaluation
=========================  ========================================================================

Policy versions themselves (numbering, reading, finding, promoting) belong to
:mod:`tummler.app.policies`; the algorithms to :mod:`tummler.learn` and :mod:`tummler.evaluate`.
"""

from tummler.app.learning.evaluation import (
    Candidate,
    Evaluation,
    NothingToEvaluateError,
    evaluate_log,
    resolve_candidate,
)
from tummler.app.learning.exploration import ExplorationPrice
from tummler.app.learning.from_log import (
    LearnReport,
    fit_policy,
    learn_from_log,
    store_policy_version,
)
from tummler.app.learning.policy_table import ProbabilityTable, read_probability_table
from tummler.app.learning.promotion import PromotionReport, promote, promoted_rival
from tummler.app.learning.store_evaluation import evaluate_store
from tummler.app.learning.store_learning import StoreLearnRow, learn_from_store
from tummler.app.policies import (
    LOG_FEATURIZER,
    POLICY_FILE_FORMAT,
    PROMOTE_ACTION,
    CampaignPolicy,
    load_policy_file,
    read_policy,
)
from tummler.app.policy_file import LearnedPolicy, save_policy_file
from tummler.learn.fitting import DEFAULT_POLICY_KIND, LEARNABLE_KINDS

__all__ = [
    "DEFAULT_POLICY_KIND",
    "LEARNABLE_KINDS",
    "LOG_FEATURIZER",
    "POLICY_FILE_FORMAT",
    "PROMOTE_ACTION",
    "CampaignPolicy",
    "Candidate",
    "Evaluation",
    "ExplorationPrice",
    "LearnReport",
    "LearnedPolicy",
    "NothingToEvaluateError",
    "ProbabilityTable",
    "PromotionReport",
    "StoreLearnRow",
    "evaluate_log",
    "evaluate_store",
    "fit_policy",
    "learn_from_log",
    "learn_from_store",
    "load_policy_file",
    "promote",
    "promoted_rival",
    "read_policy",
    "read_probability_table",
    "resolve_candidate",
    "save_policy_file",
    "store_policy_version",
]
