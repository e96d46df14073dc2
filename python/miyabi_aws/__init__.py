"""miyabi_aws: the Miyabi AWS agent's Rust engine, from Python.

    import miyabi_aws
    world = miyabi_aws.discover(["us-east-1"])
    print(world.monthly_cost, world.security_score)

Blocking calls release the interpreter; ``*_async`` variants are coroutines on the engine's
tokio runtime. Every error is a ``MiyabiError``.
"""

from ._native import (
    SCHEMA_VERSION,
    AwsError,
    BridgeError,
    CatalogError,
    ConfigError,
    Cycle,
    CycleReport,
    Discovery,
    MiyabiError,
    Optimization,
    Deployment,
    KnowledgeBase,
    Learning,
    Monitoring,
    PartialCaptureError,
    PhaseContext,
    PhaseInputError,
    Planning,
    RustPhase,
    StorageError,
    WorldState,
    WorldStateError,
    __version__,
    assess,
    discover,
    discover_async,
    optimize,
    deploy,
    plan,
    world_state_schema,
)

__all__ = [
    "SCHEMA_VERSION",
    "AwsError",
    "BridgeError",
    "CatalogError",
    "ConfigError",
    "Cycle",
    "CycleReport",
    "Discovery",
    "MiyabiError",
    "Optimization",
    "Deployment",
    "KnowledgeBase",
    "Learning",
    "Monitoring",
    "PartialCaptureError",
    "PhaseContext",
    "PhaseInputError",
    "Planning",
    "RustPhase",
    "StorageError",
    "WorldState",
    "WorldStateError",
    "__version__",
    "assess",
    "discover",
    "discover_async",
    "optimize",
    "deploy",
    "plan",
    "world_state_schema",
]
