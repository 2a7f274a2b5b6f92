"""App services of the runner (docs/services.md): `manager.ServiceManager` owns them; definitions,
prestart actions, interpolation, resolvers (one per kind of service), intrinsic and model services
each have a module of their own."""
