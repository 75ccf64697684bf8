"""The trained text models tummler ships (written by `tummler listen train`)."""
