"""Provider presets: the OpenAI-compatible clouds a config names with one line.

``[providers.ds] preset = "deepseek"`` fills ``kind``, ``base_url``, ``api_key_env``,
``catalog_provider`` and ``region``; anything the provider section sets itself wins.
The catalog ids are genai-prices' provider ids (``None``: the catalog has no such provider,
so its deployments need a ``[prices.ID]`` entry to be priced). ``region`` is where the
endpoint processes data when the vendor says so ("" when it does not: set it yourself if a
data policy depends on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Preset:
    kind: Literal["openai", "anthropic"]
    base_url: str
    api_key_env: str
    catalog_provider: str | None
    region: str


PRESETS: dict[str, Preset] = {
    "deepseek": Preset(
        "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek", "CN"
    ),
    # Alibaba Cloud Model Studio (DashScope), international endpoint; not in the catalog.
    "qwen": Preset(
        "openai",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        None,
        "SG",
    ),
    "dashscope": Preset(
        "openai",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        None,
        "CN",
    ),
    "moonshot": Preset(
        "openai", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "moonshotai", ""
    ),
    "kimi": Preset("openai", "https://api.moonshot.cn/v1", "MOONSHOT_API_KEY", "moonshotai", "CN"),
    "zhipu": Preset(
        "openai", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY", "zhipuai", "CN"
    ),
    "glm": Preset("openai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY", "zai", ""),
    "minimax": Preset("openai", "https://api.minimax.io/v1", "MINIMAX_API_KEY", "minimax", ""),
    "minimax-cn": Preset(
        "openai", "https://api.minimaxi.com/v1", "MINIMAX_API_KEY", "minimax", "CN"
    ),
}
