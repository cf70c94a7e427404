from setuptools import find_packages, setup

setup(
    name="tracec",
    version="0.1.0",
    description="Compile plain NumPy functions: trace, differentiate, optimize, generate C and CUDA",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tracec", "tracec.*"]),
    package_data={"tracec": ["cgen/templates/*"]},
    python_requires=">=3.10",
    install_requires=["numpy>=2.0", "cython>=3.0", "astunparse>=1.6"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6"],
        "gpu": ["cupy>=13"],
        "graphviz": ["graphviz>=0.20"],
    },
)
