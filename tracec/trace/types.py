"""Types of graph values: dtype and broadcastable pattern, never the shape.

One trace serves every shape of the same rank and broadcast pattern, so a
`TensorType` records only what the compiled code may rely on: the dtype, the
number of dimensions and which of them are guaranteed to have length 1.
"""
import numpy as np

# Python scalar kinds that NumPy 2 (NEP 50) treats as "weak": they take the
# dtype of the array they meet instead of forcing their own.
PY_SCALAR_DTYPES = {bool: np.dtype(bool), int: np.dtype(np.int64),
                    float: np.dtype(np.float64), complex: np.dtype(np.complex128)}


class TensorType:
    """The static type of an array value: ``TensorType(dtype, broadcastable)``.

    Parameters
    ----------
    dtype : numpy dtype or str
    broadcastable : tuple of bool
        One entry per dimension; ``True`` means the dimension always has
        length 1 (and so may broadcast against anything).
    weak : bool
        A 0-d value that came from a Python scalar; it promotes like one
        (NumPy 2 / NEP 50), so ``x_float32 * 2.5`` stays float32.

    Examples
    --------
    >>> TensorType('float32', (False, True))
    TensorType(float32, (False, True))
    """

    __slots__ = ("dtype", "broadcastable", "weak", "_hash")

    def __init__(self, dtype, broadcastable=(), weak=False):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind in "OSUVMm":
            raise TypeError(f"tracec arrays hold numbers or booleans, not dtype {self.dtype}")
        self.broadcastable = tuple(bool(b) for b in broadcastable)
        self.weak = bool(weak) and not self.broadcastable
        self._hash = hash((self.dtype, self.broadcastable, self.weak))

    @property
    def ndim(self):
        return len(self.broadcastable)

    def __eq__(self, other):
        return (isinstance(other, TensorType) and self.dtype == other.dtype
                and self.broadcastable == other.broadcastable and self.weak == other.weak)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        weak = ", weak=True" if self.weak else ""
        return f"TensorType({self.dtype}, {self.broadcastable}{weak})"

    def short(self):
        """Compact form used in printouts: ``float64[?,1]``; weak scalars get a ``~``."""
        dims = ",".join("1" if b else "?" for b in self.broadcastable)
        return f"{'~' if self.weak else ''}{self.dtype}[{dims}]"

    def with_weak(self, weak):
        return TensorType(self.dtype, self.broadcastable, weak)

    @staticmethod
    def of_value(value):
        """The type `tc.compile` gives an argument: size-1 dims are broadcastable."""
        if type(value) in PY_SCALAR_DTYPES:
            return TensorType(PY_SCALAR_DTYPES[type(value)], (), weak=True)
        return TensorType(value.dtype, tuple(s == 1 for s in value.shape))

    def check_value(self, value, what, allow_downcast=False):
        """Convert `value` for an input of this type, or raise naming `what`.

        Safe casts happen silently; an unsafe one raises TypeError unless
        `allow_downcast` (None: like False, for callers that offer no such
        option, so the message does not suggest it). Python scalars and
        lists are accepted when their values survive the conversion exactly.
        """
        hint = "" if allow_downcast is None else " or allow_input_downcast=True"
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"{what}: expected a {self.short()} array, got {type(value).__name__} {value!r}")
        if isinstance(value, np.ndarray):
            arr = value
        else:
            try:
                arr = np.asarray(value)
            except Exception as exc:
                raise TypeError(f"{what}: expected a {self.short()} array, got {type(value).__name__}") from exc
            if arr.dtype.kind in "OSUV":
                raise TypeError(f"{what}: expected a {self.short()} array, got {type(value).__name__} "
                                f"that converts to dtype {arr.dtype}")
            if arr.dtype != self.dtype and not allow_downcast:
                converted = arr.astype(self.dtype)
                with np.errstate(all="ignore"):
                    exact = converted.shape == arr.shape and np.array_equal(converted, arr, equal_nan=True)
                if not exact:
                    raise TypeError(f"{what}: the value {value!r} does not convert exactly to {self.dtype}; "
                                    f"pass an array of dtype {self.dtype}{hint}")
                arr = converted
        if arr.dtype.kind in "OSUV":
            raise TypeError(f"{what}: expected a {self.short()} array, got an array of dtype {arr.dtype}")
        if arr.ndim != self.ndim:
            raise TypeError(f"{what}: expected {self.ndim} dimension(s) ({self.short()}), "
                            f"got an array of shape {arr.shape}")
        if arr.dtype != self.dtype:
            if not (allow_downcast or np.can_cast(arr.dtype, self.dtype, "safe")):
                raise TypeError(f"{what}: expected dtype {self.dtype}, got {arr.dtype}; casting "
                                f"{arr.dtype} to {self.dtype} may lose information. Pass "
                                f"x.astype({self.dtype.name!r}){hint}")
            arr = arr.astype(self.dtype)
        for axis, (b, size) in enumerate(zip(self.broadcastable, arr.shape)):
            if b and size != 1:
                raise ValueError(f"{what}: dimension {axis} is declared broadcastable (length 1) "
                                 f"but has length {size} (shape {arr.shape})")
        return arr
