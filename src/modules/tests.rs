// Module engine tests live in tests/all/modules.rs: they need a built component.
