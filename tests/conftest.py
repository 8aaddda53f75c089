pytest_plugins = ["ari_proxy.testing.pytest_plugin"]
