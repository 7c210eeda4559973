"""Settings from the environment (prefix ``CXNLP_``) and an optional ``.env`` file; nothing else reads os.environ."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_path
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cxnlp.prediction import MAX_TEXT_CHARS


def default_ledger_url() -> str:
    """The per-user ledger (``~/.local/share/cxnlp/ledger.db`` on Linux): the same one whatever folder a
    command runs in."""
    return f"sqlite:///{user_data_path('cxnlp', appauthor=False) / 'ledger.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CXNLP_", env_file=".env", extra="ignore")

    model_dir: Path | None = None
    """Model folder used by classify and serve; None means the shipped default model."""
    model_root: str | None = None
    """Folder(s), separated by ``os.pathsep``, under which ``POST /v1/model/reload`` may load a model
    (default: the shipped model's folder and ``./models``, where `cxnlp train` writes)."""
    ledger_url: str = Field(default_factory=default_ledger_url)
    """SQLAlchemy URL of the root-cause ledger (default: ``ledger.db`` in the per-user data folder)."""
    ledger_rules: Path | None = None
    """TOML file with severity and urgency rules, departments and deadlines (default: the shipped rules)."""
    problems_file: Path | None = None
    """The analysts' own problem catalogue (TOML), read after the shipped one and extended by
    ``cxnlp ledger problems accept`` (default: ``problems.toml`` next to the default ledger)."""
    timezone: str = "Asia/Shanghai"
    """Zone in which times are shown and in which times without an offset (ticket exports) are read;
    the ledger stores UTC."""
    api_key: str | None = None
    """When set, every request that writes or returns customers' words must carry it in ``X-API-Key``."""
    allowed_hosts: str = ""
    """Host names, comma-separated, the service answers besides its loopback names, its listen address
    and IP literals. Checked when no API key is set (DNS rebinding), or whenever this is set."""
    cache_dir: Path | None = None
    """Where jieba keeps its dictionary cache (default ~/.cache/cxnlp, else the temp dir)."""
    max_text_chars: int = MAX_TEXT_CHARS
    max_batch_texts: int = 1000
    max_body_bytes: int = 20 * 1024 * 1024
    """Largest request body, counted as it arrives (chunked too). 1,000 texts of 5,000 Chinese characters
    are about 15 MB of JSON, so the default admits the documented maximum."""
    max_survey_cells: int = 1_000_000
    """Most cells (rows × columns) of one export uploaded to ``POST /v1/surveys/report``, e.g. 50,000
    submissions of 20 columns; a larger one is refused with 413 before it is parsed."""
    classify_threads: int = 2
    """Threads per worker that classify large batches, off the event loop."""
    inline_classify_chars: int = 2000
    """A batch with at most this many characters is classified on the event loop (a thread hop costs
    more than the work); larger ones go to the classify threads."""
    header_timeout: float = 10.0
    """Seconds a connection may take to send a request's headers (idle and slow-header sockets are closed)."""
    keep_alive_timeout: int = 5
    """Seconds an idle keep-alive connection stays open between requests."""
    limit_concurrency: int = 1000
    """Open connections per worker before new requests get 503."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
