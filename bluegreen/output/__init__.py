"""Presentation of a run to people: the live panel (``panel``) and the HTML/PNG report (``report``).
Both draw a :class:`~bluegreen.core.timeline.RunView`, so they say the same thing about a run."""
