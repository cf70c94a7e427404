"""tc.config: flags from the rc file, TRACEC_FLAGS and assignment, in rising
precedence; `change` restores; bad names and values raise ConfigError."""
import warnings

import numpy as np
import pytest

import tracec as tc
from tracec.config import FLAGS, Config, ConfigError

NO_RC = "/nonexistent/tracecrc"


def write_rc(tmp_path, text):
    path = tmp_path / "tracecrc"
    path.write_text(text)
    return str(path)


def test_defaults():
    c = Config(env={"TRACECRC": NO_RC})
    assert c.floatX == "float64" and c.mode == "FAST_RUN" and c.device == "cpu"
    assert c.optimizer_including == () and c.optimizer_excluding == ()
    assert set(dir(c)) >= set(FLAGS)


def test_flags_from_rc_file(tmp_path):
    rc = write_rc(tmp_path, "[global]\nfloatX = float32\nmode = FAST_COMPILE\ndevice = cuda1\n"
                            "optimizer_excluding = fusion:inplace\n")
    c = Config(env={"TRACECRC": rc})
    assert c.floatX == "float32" and c.mode == "FAST_COMPILE" and c.device == "cuda1"
    assert c.optimizer_excluding == ("fusion", "inplace")
    assert Config(env={}, rcfile=rc).floatX == "float32"   # explicit rcfile argument


def test_flags_from_env():
    c = Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": "floatX=float32,mode=FAST_COMPILE"})
    assert c.floatX == "float32" and c.mode == "FAST_COMPILE"
    c = Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": " device=cuda , floatX=float16 ,"})
    assert c.device == "cuda" and c.floatX == "float16"


def test_precedence_rc_then_env_then_assignment(tmp_path):
    rc = write_rc(tmp_path, "[global]\nfloatX = float32\nmode = FAST_COMPILE\n")
    c = Config(env={"TRACECRC": rc, "TRACEC_FLAGS": "floatX=float16"})
    assert c.floatX == "float16"           # env beats rc
    assert c.mode == "FAST_COMPILE"        # rc beats the default
    c.floatX = "float64"
    assert c.floatX == "float64"           # assignment beats env
    with c.change(mode="FAST_RUN"):
        assert c.mode == "FAST_RUN"
    assert c.mode == "FAST_COMPILE"


def test_change_restores_even_on_error():
    c = Config(env={"TRACECRC": NO_RC})
    with c.change(floatX="float32", mode="FAST_COMPILE") as cfg:
        assert cfg is c and c.floatX == "float32" and c.mode == "FAST_COMPILE"
    assert c.floatX == "float64" and c.mode == "FAST_RUN"
    with pytest.raises(RuntimeError):
        with c.change(floatX="float32"):
            c.device = "cuda"
            raise RuntimeError("boom")
    assert c.floatX == "float64" and c.device == "cpu"
    with pytest.raises(ConfigError):
        with c.change(floatX="float32", mode="bad"):
            pass
    assert c.floatX == "float64"


def test_global_config_change_affects_symbolic_constructors():
    with tc.config.change(floatX="float32"):
        assert tc.config.floatX == "float32"
        assert tc.vector().dtype == np.float32
    assert tc.config.floatX == "float64"


def test_global_config_mode_is_used_by_functions():
    x = tc.dvector("x")
    with tc.config.change(mode="DEBUG"):
        f = tc.function([x], np.log(x))
    with pytest.raises(FloatingPointError):  # the DEBUG mode's NaN check
        f([-1.0])
    np.testing.assert_array_equal(tc.function([x], x + 1)([1.0]), [2.0])


def test_unknown_flag_lists_valid_ones(tmp_path):
    for make in (lambda: Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": "bogus=1"}),
                 lambda: Config(env={"TRACECRC": write_rc(tmp_path, "[global]\nfloatx = float32\n")}),
                 lambda: setattr(Config(env={"TRACECRC": NO_RC}), "bogus", 1),
                 lambda: Config(env={"TRACECRC": NO_RC}).change(bogus=1).__enter__()):
        with pytest.raises(ConfigError) as info:
            make()
        msg = str(info.value)
        assert "bogus" in msg or "floatx" in msg
        assert "floatX" in msg and "mode" in msg and "device" in msg
    with pytest.raises(AttributeError, match="floatX"):
        Config(env={"TRACECRC": NO_RC}).bogus


@pytest.mark.parametrize("name,value,valid", [
    ("floatX", "int8", "float32"), ("mode", "FAST", "FAST_RUN"), ("device", "gpu", "cuda"),
    ("retrace_warn", "0", "positive"), ("check_graph", "maybe", "True"),
])
def test_bad_value_names_flag_and_valid_values(name, value, valid):
    with pytest.raises(ConfigError) as info:
        Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": f"{name}={value}"})
    msg = str(info.value)
    assert name in msg and value in msg and valid in msg
    c = Config(env={"TRACECRC": NO_RC})
    with pytest.raises(ConfigError):
        setattr(c, name, value)
    assert getattr(c, name) == Config(env={"TRACECRC": NO_RC}).__getattr__(name)


def test_malformed_env_item():
    with pytest.raises(ConfigError, match="name=value"):
        Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": "floatX"})


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_value_parsing():
    c = Config(env={"TRACECRC": NO_RC, "TRACEC_FLAGS": "check_graph=yes,retrace_warn=3,device=cuda0"})
    assert c.check_graph is True and c.retrace_warn == 3 and c.device == "cuda0"
    c.optimizer_including = ["a", "b"]
    assert c.optimizer_including == ("a", "b")
    c.cache_dir = "~/somewhere"
    assert not c.cache_dir.startswith("~")
    assert "floatX" in c.describe()


def test_retrace_warn_flag():
    f = tc.compile(lambda x: x + 1)
    with tc.config.change(retrace_warn=2):
        f(np.ones(1))
        with pytest.warns(UserWarning, match="traced 2 times"):
            f(np.ones(1, np.float32))
    g = tc.compile(lambda x: x + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g(np.ones(1))
        g(np.ones(1, np.float32))
