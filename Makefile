# `make demo` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
# trt-rtx: TensorRT-RTX builds real engines on a CPU-only machine, so the tests drive a real TensorRT-family builder.
EXTRAS ?= cpu,torch,keras,trt-rtx,openvino,report,sweep,ray,dev,examples
# Real-weight models for the examples and their tests: only their ONNX files are used, so without
# their dependencies (rapidocr's code wants OpenCV; silero-vad's wants torch, which must stay as pinned).
MODEL_PACKAGES := rapidocr-onnxruntime==1.4.4 silero-vad==6.2.3
# make examples EXAMPLE_BACKENDS=ort-cpu,ort-cuda,trt,trt-rtx on a GPU machine
EXAMPLE_BACKENDS ?= ort-cpu
DEMO := build/demo

# The zoo (benchmarks/zoo.py) needs torchvision, which does not import beside the pinned CPU torch:
# its own environment, with torch and torchvision built together (a CUDA build; it runs on the CPU).
ZOO_VENV ?= .venv-zoo
ZOO_TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo examples lint test clean zoo-venv zoo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps $(MODEL_PACKAGES)
	touch $@

# The bundled CNN to ONNX, quantized to fp16 and int8 (int8 calibrated on random data: a speed demo),
# the three benchmarked in one table with their agreement with fp32, then one report with plots.
demo: install
	$(BIN)/infertool convert examples/tiny_cnn.py:build --input-shape 1x3x64x64 -o $(DEMO)/tiny_cnn.onnx --force
	$(BIN)/infertool quantize $(DEMO)/tiny_cnn.onnx -p fp16 -o $(DEMO)/tiny_cnn.fp16.onnx --json $(DEMO)/quantize_fp16.json --force
	$(BIN)/infertool quantize $(DEMO)/tiny_cnn.onnx -p int8 --calib-data random -o $(DEMO)/tiny_cnn.int8.onnx --json $(DEMO)/quantize_int8.json --force
	$(BIN)/infertool bench $(DEMO)/tiny_cnn.onnx $(DEMO)/tiny_cnn.fp16.onnx $(DEMO)/tiny_cnn.int8.onnx --label fp32,fp16,int8 \
		--backend ort-cpu --batch 1,8,32 --save-samples --markdown $(DEMO)/bench.md --json $(DEMO)/bench.json --force
	$(BIN)/infertool report $(DEMO)/bench.json $(DEMO)/quantize_fp16.json $(DEMO)/quantize_int8.json -o $(DEMO)/report.html --force
	@echo "open $(DEMO)/report.html"

examples: install
	$(BIN)/python examples/classification/run.py --backends $(EXAMPLE_BACKENDS)
	$(BIN)/python examples/detection/run.py --backends $(EXAMPLE_BACKENDS)
	$(BIN)/python examples/speech/run.py --backends $(EXAMPLE_BACKENDS)

lint: install
	$(BIN)/ruff check infertool tests benchmarks examples
	$(BIN)/lint-imports

test: lint zoo-venv
	$(BIN)/python -m pytest -q

zoo-venv: $(ZOO_VENV)/.installed

$(ZOO_VENV)/.installed: pyproject.toml Makefile
	test -x $(ZOO_VENV)/bin/python || $(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install -q --upgrade pip
	$(ZOO_VENV)/bin/python -m pip install -q $(ZOO_TORCH)
	$(ZOO_VENV)/bin/python -m pip install -q -e ".[cpu,torch,keras]" transformers timm
	touch $@

# every architecture (about an hour and a half on 2 cores): benchmarks/results/zoo/
zoo: zoo-venv
	$(ZOO_VENV)/bin/python benchmarks/zoo.py

clean:
	rm -rf build .pytest_cache
