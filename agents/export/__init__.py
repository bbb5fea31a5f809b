"""ONNX export of trained policies and the `megapod export` / `megapod control` commands (needs the
`export` extra)."""
