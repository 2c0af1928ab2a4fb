# Entry points that work on a fresh Debian 12 machine: each installs what it needs first.
BUILD_DIR    ?= build
SAN_DIR      ?= build-asan
JOBS         ?= $(shell nproc)
PORT         ?= 8080

.PHONY: deps build run test test-release test-sanitize bench format clean

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DASYNCHTTP_BUILD_TESTS=ON -DASYNCHTTP_BUILD_EXAMPLES=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: the seed's Hello World server.
run: build
	$(BUILD_DIR)/examples/hello $(PORT)

# Every test, in a release build and again under AddressSanitizer + UBSan.
test: test-release test-sanitize

test-release: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-sanitize: deps
	cmake -S . -B $(SAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DASYNCHTTP_SANITIZE=ON \
	      -DASYNCHTTP_BUILD_TESTS=ON -DASYNCHTTP_BUILD_EXAMPLES=ON
	cmake --build $(SAN_DIR) -j $(JOBS)
	ctest --test-dir $(SAN_DIR) --output-on-failure -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.hpp' '*.cpp')

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
