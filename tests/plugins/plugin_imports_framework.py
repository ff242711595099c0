"""A plugin that imports its framework at module level (jax), which the kit must report in one short line."""

from typing import Any, Sequence

import jax  # noqa: F401  (the mistake under test: this belongs in prepare())

from dlbench import hookimpl


class EagerImporter:
    name = "eagerimport"

    def version(self) -> str:
        return "0"

    def variants(self) -> Sequence[str]:
        return ["default"]

    def devices(self) -> Sequence[str]:
        return ["cpu"]

    def supports(self, spec: Any) -> bool:
        return spec.name == "softmax"

    def prepare(self, setup: Any) -> Any:
        raise NotImplementedError("only the cheap questions are tested")


@hookimpl
def dlbench_register_frameworks(register: Any) -> None:
    register(EagerImporter())
