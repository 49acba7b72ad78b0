"""plusrl: personalized reward modeling with learned text summaries of users (PLUS).

The public API (see plusrl.api): `PersonalizedRewardModel`, `Summarizer`, `export_run`.
They load torch and transformers on first use, so `import plusrl` stays light.
"""

__version__ = "0.1.0"

__all__ = ["PersonalizedRewardModel", "Summarizer", "export_run"]


def __getattr__(name: str):
    if name in ("PersonalizedRewardModel", "Summarizer"):
        from plusrl import api

        return getattr(api, name)
    if name == "export_run":
        from plusrl.export import export_run

        return export_run
    raise AttributeError(f"module 'plusrl' has no attribute {name!r}")
