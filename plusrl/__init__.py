"""plusrl: personalized reward modeling with learned text summaries of users (PLUS)."""

__version__ = "0.1.0"
