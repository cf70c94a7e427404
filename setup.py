import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

# the C backend's runtime: built once here; per-graph code is plain C compiled at run time
RUNTIME = Extension("tracec.cgen._native", ["tracec/cgen/_native.pyx"],
                    include_dirs=[numpy.get_include(), "tracec/cgen/templates"],
                    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])

setup(
    name="tracec",
    version="0.1.0",
    description="Compile plain NumPy functions: trace, differentiate, optimize, generate C and CUDA",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tracec", "tracec.*"]),
    package_data={"tracec": ["cgen/templates/*", "templates/*"]},
    ext_modules=cythonize([RUNTIME], language_level=3, build_dir="build"),
    python_requires=">=3.10",
    install_requires=["numpy>=2.0", "cython>=3.0", "astunparse>=1.6"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "graphviz>=0.20"],  # graphviz: drawing tests (they also need `dot`)
        "gpu": ["cupy>=13"],
        "graphviz": ["graphviz>=0.20"],
    },
)
