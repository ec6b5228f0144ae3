"""The built-in datasets, one module each: a module that holds `DATASET` (a
`Declaration`) is found by the registry, with nothing else to edit."""
