"""Type stubs of the compiled module (checked against it by mypy's stubtest in CI)."""

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Coroutine, Optional, Protocol, Union, final

from typing_extensions import disjoint_base

__all__ = [
    "AwsError", "BridgeError", "CatalogError", "ConfigError", "Cycle", "CycleReport", "Deployment", "Discovery", "KnowledgeBase", "Learning", "Monitoring",
    "MiyabiError", "Optimization", "PartialCaptureError", "PhaseContext", "PhaseInputError", "Planning",
    "RustPhase", "StorageError", "deploy", "optimize", "plan",
    "SCHEMA_VERSION", "WorldState", "WorldStateError", "__version__", "assess", "discover", "discover_async",
    "world_state_schema",
]

__version__: str
SCHEMA_VERSION: int

_Path = Union[str, os.PathLike[str]]
_Until = Union[datetime, int, float, None]

class MiyabiError(Exception): ...
class AwsError(MiyabiError): ...
class WorldStateError(MiyabiError): ...
class CatalogError(MiyabiError): ...
class PartialCaptureError(MiyabiError): ...
class BridgeError(MiyabiError): ...
class ConfigError(MiyabiError): ...
class PhaseInputError(MiyabiError): ...
class StorageError(MiyabiError): ...

@final
class WorldState:
    @classmethod
    def load(cls, path: _Path) -> WorldState: ...
    @classmethod
    def from_json(cls, text: str) -> WorldState: ...
    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> WorldState: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def save(self, path: _Path) -> None: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def account_id(self) -> Optional[str]: ...
    @property
    def regions(self) -> list[str]: ...
    @property
    def captured_at(self) -> str: ...
    @property
    def is_partial(self) -> bool: ...
    @property
    def gaps(self) -> list[dict[str, str]]: ...
    @property
    def resource_count(self) -> int: ...
    @property
    def inventory(self) -> dict[str, list[dict[str, Any]]]: ...
    @property
    def instances(self) -> list[dict[str, Any]]: ...
    @property
    def buckets(self) -> list[dict[str, Any]]: ...
    @property
    def findings(self) -> list[dict[str, Any]]: ...
    @property
    def costs(self) -> list[dict[str, Any]]: ...
    @property
    def monthly_cost(self) -> float: ...
    @property
    def security_score(self) -> float: ...
    @property
    def utilisation_percent(self) -> Optional[float]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...

def assess(world: WorldState, catalog: Optional[_Path] = None) -> WorldState: ...
def world_state_schema() -> str: ...
def discover(
    regions: Optional[Sequence[str]] = None,
    *,
    endpoint_url: Optional[str] = None,
    profile: Optional[str] = None,
    lookback_hours: int = 336,
    until: _Until = None,
    catalog: Optional[_Path] = None,
) -> WorldState: ...
def discover_async(
    regions: Optional[Sequence[str]] = None,
    *,
    endpoint_url: Optional[str] = None,
    profile: Optional[str] = None,
    lookback_hours: int = 336,
    until: _Until = None,
    catalog: Optional[_Path] = None,
) -> Coroutine[Any, Any, WorldState]: ...

@disjoint_base
class RustPhase:
    @property
    def name(self) -> str: ...
    @property
    def theta(self) -> int: ...

@final
class Discovery(RustPhase):
    def __new__(
        cls,
        regions: Optional[Sequence[str]] = None,
        *,
        endpoint_url: Optional[str] = None,
        profile: Optional[str] = None,
        lookback_hours: int = 336,
        until: _Until = None,
    ) -> Discovery: ...

@final
class Planning(RustPhase):
    def __new__(cls) -> Planning: ...

@final
class Optimization(RustPhase):
    def __new__(
        cls,
        *,
        max_changes: Optional[int] = None,
        deny: Optional[Sequence[str]] = None,
        environment: str = "production",
    ) -> Optimization: ...

@final
class Deployment(RustPhase):
    def __new__(
        cls,
        regions: Optional[Sequence[str]] = None,
        *,
        apply: bool = False,
        approve: Union[str, Sequence[str], None] = None,
        deny: Optional[Sequence[str]] = None,
        endpoint_url: Optional[str] = None,
        profile: Optional[str] = None,
    ) -> Deployment: ...

@final
class Monitoring(RustPhase):
    def __new__(
        cls,
        *,
        webhook: Optional[str] = None,
        cpu_alarm_percent: float = 80.0,
        endpoint_url: Optional[str] = None,
        profile: Optional[str] = None,
    ) -> Monitoring: ...

@final
class Learning(RustPhase):
    def __new__(cls, *, knowledge_base: Optional[_Path] = None, cpu_alarm_percent: float = 80.0) -> Learning: ...

@final
class KnowledgeBase:
    def __new__(cls, path: _Path) -> KnowledgeBase: ...
    def outcomes(self) -> list[dict[str, Any]]: ...
    def headroom(self) -> dict[str, float]: ...
    def close(self) -> None: ...
    def __enter__(self) -> KnowledgeBase: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

def plan(world: WorldState, *, catalog: Optional[_Path] = None) -> dict[str, Any]: ...
def deploy(
    execution_plan: dict[str, Any],
    regions: Optional[Sequence[str]] = None,
    *,
    apply: bool = False,
    approve: Union[str, Sequence[str], None] = None,
    deny: Optional[Sequence[str]] = None,
    endpoint_url: Optional[str] = None,
    profile: Optional[str] = None,
) -> dict[str, Any]: ...
def optimize(
    world: WorldState,
    *,
    max_changes: Optional[int] = None,
    deny: Optional[Sequence[str]] = None,
    environment: str = "production",
    catalog: Optional[_Path] = None,
) -> dict[str, Any]: ...

@final
class PhaseContext:
    @property
    def iteration(self) -> int: ...
    @property
    def world(self) -> Optional[WorldState]: ...
    @world.setter
    def world(self, world: WorldState) -> None: ...
    @property
    def out_dir(self) -> Optional[str]: ...
    @property
    def applicable_changes(self) -> int: ...
    @applicable_changes.setter
    def applicable_changes(self, n: int) -> None: ...
    @property
    def plan(self) -> Optional[dict[str, Any]]: ...
    @property
    def execution_plan(self) -> Optional[dict[str, Any]]: ...
    def add_report(self, path: _Path) -> None: ...

class PythonPhase(Protocol):
    """What a phase written in Python provides: a name (a phase's name, or any name with
    `theta` set to 1-6) and `run`."""

    name: str
    def run(self, context: PhaseContext) -> None: ...

@final
class CycleReport:
    @property
    def converged(self) -> bool: ...
    @property
    def stop(self) -> str: ...
    @property
    def world(self) -> Optional[WorldState]: ...
    @property
    def reports(self) -> list[str]: ...
    @property
    def iterations(self) -> list[dict[str, Any]]: ...

@final
class Cycle:
    def __new__(cls, phases: Sequence[Union[RustPhase, PythonPhase]], *, max_iterations: int = 10) -> Cycle: ...
    @property
    def phases(self) -> list[str]: ...
    def run(
        self,
        *,
        out_dir: Optional[_Path] = None,
        world: Optional[WorldState] = None,
        catalog: Optional[_Path] = None,
    ) -> CycleReport: ...
