// Surgery module.
