"""Registry: registration, duplicates, and not-found messages."""

import pytest

from paddleseg.cvlibs.manager import ComponentManager


def test_register_and_get():
    reg = ComponentManager('widgets', 'my_pkg')

    @reg.add_component
    class Widget:
        pass

    assert reg['Widget'] is Widget
    assert 'Widget' in reg and len(reg) == 1


def test_duplicate_name_names_both_modules():
    reg = ComponentManager('widgets')

    def make():
        class Widget:
            pass
        return Widget

    first, second = make(), make()
    second.__qualname__ = 'other.Widget'
    reg.add_component(first)
    with pytest.raises(KeyError) as e:
        reg.add_component(second)
    msg = str(e.value)
    assert 'make.<locals>.Widget' in msg and 'other.Widget' in msg


def test_registering_same_object_twice_is_fine():
    reg = ComponentManager('widgets')

    class Widget:
        pass

    reg.add_component(Widget)
    reg.add_component(Widget)
    assert len(reg) == 1


def test_unknown_name_lists_close_matches_and_package():
    reg = ComponentManager('backbones', 'paddleseg.models')

    @reg.add_component
    class ResNet50_vd:
        pass

    @reg.add_component
    class HRNet_W18:
        pass

    with pytest.raises(KeyError) as e:
        reg['ResNet50_v']
    msg = str(e.value)
    assert "'ResNet50_v' is not registered in backbones" in msg
    assert "Did you mean 'ResNet50_vd'" in msg
    assert 'HRNet_W18' in msg and 'import paddleseg.models' in msg


def test_rejects_non_callables():
    reg = ComponentManager('widgets')
    with pytest.raises(TypeError, match='classes or functions'):
        reg.add_component(3)
