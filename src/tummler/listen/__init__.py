"""What people say about the brand: sentiment, emotion, moderation flags. Pure.

Text models are multinomial logistic regressions over hashed n-grams and VADER's lexicon scores
(:class:`TextFeaturizer`), trained by ``tummler listen train`` and shipped as small ``.npz`` files
(:class:`TextModel`); :func:`score_labels` measures one against labeled posts. Spike alarms on
hourly mention counts (:func:`detect_spikes`) judge each hour against a weekday × hour baseline
with a stated false-alarm rate.
"""

from tummler.listen._metrics import ClassificationScores, score_labels, vader_sentiment
from tummler.listen._model import UNKNOWN_LANGUAGE, TextModel, fit_text_model, recalibrate_priors
from tummler.listen._spikes import (
    MIN_HISTORY_DAYS,
    HourlyBaseline,
    Spike,
    detect_spikes,
    fit_hourly_baseline,
)
from tummler.listen._text import TextFeaturizer, normalize_post
from tummler.listen._themes import NO_THEME, ThemeModel, fit_themes

__all__ = [
    "MIN_HISTORY_DAYS",
    "NO_THEME",
    "UNKNOWN_LANGUAGE",
    "ClassificationScores",
    "HourlyBaseline",
    "Spike",
    "TextFeaturizer",
    "TextModel",
    "ThemeModel",
    "detect_spikes",
    "fit_hourly_baseline",
    "fit_text_model",
    "fit_themes",
    "normalize_post",
    "recalibrate_priors",
    "score_labels",
    "vader_sentiment",
]
