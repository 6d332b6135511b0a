"""The contract everything else depends on and that depends on nothing (framework-free)."""
