"""grukit._config_field.ConfigField: a module attribute that reads and writes its config's field.

From a mutation audit."""
from grukit import GRU
from grukit._config_field import ConfigField


def test_a_config_field_read_on_the_class_is_the_descriptor():
    """A mutation audit: `__get__` returning None for class access (obj is None) survived; reading the field on
    the class must give the descriptor itself (what help(), inspect and dataclass-like tools look at)."""
    for name in ("hidden_size", "batch_first", "dropout", "reset"):
        field = getattr(GRU, name)
        assert isinstance(field, ConfigField) and field.name == name
    assert GRU.hidden_size.check is None and GRU.batch_first.check is not None
