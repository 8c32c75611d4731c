"""AUTOMATIC1111's web API (/sdapi/v1), so that its existing clients and plugins work unchanged."""
