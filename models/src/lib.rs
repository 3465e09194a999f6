//! Outpost model format: quantized safetensors.

