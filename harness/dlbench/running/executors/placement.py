"""Which node of a cluster runs the next case: pure logic, no Ray, so the rules are tested directly.

The rule that makes cluster numbers comparable with local ones: a case has a node's cores to itself.
Unless the user asks for packing, a node runs one case at a time; with ``--pack`` a node takes cases
while the thread budgets (and GPUs) of the cases on it fit its CPUs (and GPUs). A retry prefers any
other node that can run the case, and only falls back to the node it crashed on when no other
live node could ever take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

HEAD_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class Need:
    """What one case asks of a node."""

    cpus: int
    gpus: int = 0
    node_type: Optional[str] = None  # a custom resource the node must have

    def ray_options(self) -> dict:
        """The Ray task options that ask for the same resources (Ray enforces them too)."""
        options: dict = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.node_type:
            options["resources"] = {self.node_type: 0.001}  # present on the node; a sliver, so packing is not limited
        return options


@dataclass(frozen=True)
class Node:
    node_id: str
    hostname: str = ""
    address: str = ""
    resources: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_head(self) -> bool:
        return HEAD_RESOURCE in self.resources

    @property
    def label(self) -> str:
        return f"{self.hostname or self.address or 'node'} ({self.node_id[:8]})"

    def fits(self, need: Need) -> bool:
        """Whether this node could ever run the case (its totals, not what is free now)."""
        return (self.resources.get("CPU", 0) >= need.cpus and self.resources.get("GPU", 0) >= need.gpus
                and (not need.node_type or self.resources.get(need.node_type, 0) > 0))

    def has_room(self, need: Need, running: Sequence[Need], pack: bool) -> bool:
        if not running:
            return True
        if not pack:
            return False
        cpus = sum(n.cpus for n in running) + need.cpus
        gpus = sum(n.gpus for n in running) + need.gpus
        return cpus <= self.resources.get("CPU", 0) and gpus <= self.resources.get("GPU", 0)


def pick(nodes: Iterable[Node], need: Need, running: Mapping[str, Sequence[Need]], pack: bool,
         avoid: Iterable[str] = ()) -> Optional[Node]:
    """The node to run a case on now, or None when it has to wait.

    Worker nodes before the head (the head also runs the driver and Ray's control plane). Nodes in
    ``avoid`` (where this case crashed) are used only when no other live node fits at all.
    """
    avoid = set(avoid)
    fitting = sorted((n for n in nodes if n.fits(need)), key=lambda n: (n.is_head, n.node_id))
    others = [n for n in fitting if n.node_id not in avoid]
    for node in others or fitting:
        if node.has_room(need, running.get(node.node_id, ()), pack):
            return node
    return None


def describe_missing(nodes: Sequence[Node], need: Need) -> str:
    """Why no live node can run a case, in one clause naming what the nodes have."""
    have = "; ".join(f"{n.label}: {_resources(n.resources)}" for n in nodes) or "no live nodes"
    wants = [f"{need.cpus} CPU"] + ([f"{need.gpus} GPU"] if need.gpus else []) + \
            ([f"the custom resource {need.node_type!r}"] if need.node_type else [])
    return f"no live node of the cluster has {' and '.join(wants)} ({have})"


def _resources(resources: Mapping[str, float]) -> str:
    shown = {k: v for k, v in resources.items() if not k.startswith("node:") and k not in ("memory",
                                                                                            "object_store_memory")}
    return ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items())) or "none"
