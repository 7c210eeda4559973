"""Settings from the environment (prefix ``CXNLP_``) and an optional ``.env`` file; nothing else reads os.environ."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cxnlp.prediction import MAX_TEXT_CHARS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CXNLP_", env_file=".env", extra="ignore")

    model_dir: Path | None = None
    """Model folder used by classify and serve; None means the shipped default model."""
    model_root: str | None = None
    """Folder(s), separated by ``os.pathsep``, under which ``POST /v1/model/reload`` may load a model
    (default: the shipped model's folder and ``./models``, where `cxnlp train` writes)."""
    ledger_url: str = "sqlite:///cxnlp_ledger.db"
    """SQLAlchemy URL of the root-cause ledger (SQLite file in the working directory by default)."""
    ledger_rules: Path | None = None
    """TOML file with severity rules, departments and deadlines (default: the shipped rules)."""
    api_key: str | None = None
    """When set, every write request to the HTTP service must carry it in ``X-API-Key``."""
    cache_dir: Path | None = None
    """Where jieba keeps its dictionary cache (default ~/.cache/cxnlp, else the temp dir)."""
    max_text_chars: int = MAX_TEXT_CHARS
    max_batch_texts: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
