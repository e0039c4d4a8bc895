# Yachay SIMD analysis addon. Branch on target_arch (not the build host) so the same file
# cross-compiles for the Pi (see /work/shared/NOTES.md section 6):
#   CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
#     AR=aarch64-linux-gnu-ar node-gyp rebuild --arch=arm64 --nodedir=/usr
# Kernel equality on both architectures without Node: npm run test:native:arm64.
# Kernels that need their own compiler flags are static libraries: gyp has no per-file
# flags, and the flags are the point (scalar must not auto-vectorise; avx2 must be the
# only object with AVX instructions in it).
{
  'target_defaults': {
    'include_dirs': ['src'],
    # No implicit FMA contraction anywhere (GCC contracts by default on AArch64): the
    # finishing math in kernels.h then rounds exactly like the TypeScript reference.
    # Kernels that want FMA ask for it with intrinsics.
    'cflags_cc': ['-std=c++17', '-O3', '-fvisibility=hidden', '-fPIC', '-ffp-contract=off'],
  },
  'targets': [
    {
      # Reference path: no auto-vectorisation and no FMA contraction, so "scalar" stays
      # scalar and matches the TypeScript reference bit for bit.
      'target_name': 'kernels_scalar',
      'type': 'static_library',
      'sources': ['src/scalar/kernels.cc'],
      'cflags_cc': ['-fno-tree-vectorize'],
      'conditions': [['target_arch=="arm64"', {'cflags_cc': ['-march=armv8-a']}]],
    },
    {
      # Called only after __builtin_cpu_supports("avx2") says yes (src/dispatch.cc).
      'target_name': 'kernels_avx2',
      'conditions': [
        ['target_arch=="x64"',
          {'type': 'static_library', 'sources': ['src/x86/avx2.cc'],
           'cflags_cc': ['-mavx2', '-mfma']},
          {'type': 'none'}],
      ],
    },
    {
      'target_name': 'yachay_native',
      'sources': ['src/addon.cc', 'src/dispatch.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
      'dependencies': ['kernels_scalar', 'kernels_avx2'],
      'conditions': [
        # NEON is baseline on AArch64; 32-bit arm gets the scalar table only.
        ['target_arch=="arm64"', {
          'sources': ['src/arm/neon.cc'],
          'cflags_cc': ['-march=armv8-a'],
        }],
        ['target_arch=="x64"', {
          'sources': ['src/x86/sse2.cc'],
          'cflags_cc': ['-march=x86-64'],
        }],
      ],
    },
    {
      # System calls Node lacks (sd_notify's Unix datagram), kept apart from the kernels so the
      # analysis addon stays pure computation. Linux only: elsewhere the target builds nothing.
      'target_name': 'yachay_sys',
      'conditions': [
        ['OS=="linux"', {
          'sources': ['src/sys/notify.cc'],
          'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
          'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
        }, {'type': 'none'}],
      ],
    },
    {
      # TensorFlow Lite binding (daemon/models/backends/tflite.ts), a separate .node so a
      # broken TFLite install never stops the analysis kernels from loading. Links the C
      # library that tfjs-tflite-node ships; the .so is copied next to the addon and found
      # through rpath $ORIGIN, so build/Release can move as a whole. Only Linux x64/arm64
      # have that library: elsewhere the target builds nothing and the loader says so.
      'target_name': 'yachay_tflite',
      'variables': {
        'tflite_deps': '<(module_root_dir)/../node_modules/tfjs-tflite-node/cc_deps',
        'conditions': [
          ['target_arch=="arm64"', {'tflite_arch': 'linux_arm64'}, {'tflite_arch': 'linux_amd64'}],
        ],
      },
      'conditions': [
        ['OS=="linux" and (target_arch=="x64" or target_arch=="arm64")', {
          'sources': ['src/tflite/addon.cc', 'src/tflite/session.cc'],
          'include_dirs': [
            "<!(node -p \"require('node-addon-api').include_dir\")",
            '<(tflite_deps)/include',
          ],
          'defines': ['NAPI_VERSION=8', 'NAPI_DISABLE_CPP_EXCEPTIONS'],
          'copies': [{
            'destination': '<(PRODUCT_DIR)',
            'files': ['<(tflite_deps)/<(tflite_arch)/libtensorflowlite_c.so'],
          }],
          'libraries': [
            '-L<(tflite_deps)/<(tflite_arch)',
            '-ltensorflowlite_c',
            "-Wl,-rpath,'$$ORIGIN'",
          ],
        }, {
          'type': 'none',
        }],
      ],
    },
  ],
}
