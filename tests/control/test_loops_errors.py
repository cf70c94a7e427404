"""Loops and ifs on traced values that cannot be captured as written: each error
names this file and the user's line, and says what to write instead."""
import os

import numpy as np
import pytest

import tracec as tc

THIS_FILE = os.path.basename(__file__)


def line_of(marker):
    with open(__file__) as fh:
        hits = [i for i, line in enumerate(fh, 1) if line.rstrip().endswith("# " + marker)]
    assert len(hits) == 1, marker
    return hits[0]


def raises_at(fn, args, marker, *fragments):
    with pytest.raises(tc.LoopConversionError) as info:
        tc.compile(fn)(*args)
    text = str(info.value)
    assert f"{THIS_FILE}:{line_of(marker)}" in text, text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


def test_variable_first_assigned_in_traced_loop_and_used_after():
    def f(x, n):
        for i in range(n):  # undefined-before
            y = x * i
        return y

    raises_at(f, (np.ones(2), 3), "undefined-before", "`y` has no value before this loop",
              "Give `y` a value before the loop")


def test_carry_changing_dtype():
    def f(x, n):
        acc = np.zeros(3, dtype=np.int64)
        for i in range(n):  # dtype-change
            acc = acc + x
        return acc

    raises_at(f, (np.ones(3), 2), "dtype-change", "`acc` is int64[?] before this loop but float64[?]",
              "acc = acc.astype(np.float64)")


def test_carry_changing_number_of_dimensions():
    def f(X):
        s = 0.0
        for row in X:  # ndim-change
            s = s + row
        return s

    raises_at(f, (np.ones((3, 2)),), "ndim-change", "number of dimensions",
              "`s = np.zeros_like(...)`")


def test_return_inside_traced_loop():
    def f(x, n):
        for i in range(n):  # return-in-loop
            if i > 2:
                return x
        return -x

    text = raises_at(f, (np.ones(2), 5), "return-in-loop", "contains `return`",
                     "assign the result to a variable")
    assert f"line {line_of('return-in-loop') + 2}" in text


def test_list_append_inside_traced_loop():
    def f(x):
        ys = []
        for v in x:  # append-in-loop
            ys.append(v * 2)
        return np.stack(ys)

    raises_at(f, (np.ones(3),), "append-in-loop", "ys.append(", "ys[i] = y")


def test_variable_assigned_in_one_branch_of_traced_if():
    def f(x):
        if x.sum() > 0:  # one-branch
            y = x * 2
        return y

    raises_at(f, (np.ones(2),), "one-branch", "`y` has no value after the else-branch",
              "give `y` a value before the `if` or in both branches")


def test_traced_if_that_only_raises():
    def f(x):
        if x.sum() > 10:  # raise-only
            raise ValueError("too big")
        return x

    raises_at(f, (np.ones(2),), "raise-only", "raises an exception", "np.where")

    def g(x):
        if x.sum() > 10:  # no-assignment
            print("big")
        return x

    raises_at(g, (np.ones(2),), "no-assignment", "assigns no variable", "np.where")


def test_traced_if_with_different_dtypes_in_branches():
    def f(x, flag):
        y = x.astype(np.float32)
        if flag > 0:  # branch-dtypes
            y = x
        return y

    raises_at(f, (np.ones(2), 1), "branch-dtypes", "`y` is float64 in the then-branch and float32",
              ".astype(np.float64)")


def _zero_first(B):
    B[0] = 0.0


def test_in_place_change_by_a_called_function_is_refused():
    def g(B, n):
        total = 0.0
        for i in range(n):  # hidden-mutation-2
            _zero_first(B)
            total = total + B.sum()
        return total

    raises_at(g, (np.ones(3), 2), "hidden-mutation-2", "`B` is changed in place",
              "`B[...] = new_value`")


def test_loop_over_traced_scalar():
    def f(x):
        out = 0.0
        for v in x.sum():  # scalar-iter
            out = out + v
        return out

    raises_at(f, (np.ones(3),), "scalar-iter", "cannot loop over a 0-d traced array")


def test_plain_python_error_for_untraced_code_is_unchanged():
    def f(x, n):
        for i in range(n):
            x = x + i
        return x

    with pytest.raises(TypeError, match="'str' object cannot be interpreted as an integer"):
        tc.compile(f, static_argnums=1)(np.ones(2), "3")
