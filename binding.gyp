# The native addon of resnet-ts (build/Release/resnet_native.node), built by
# scripts/install-native.js with the node-gyp that ships with npm. csrc/kernels.c is compiled
# three times on x86-64, for AVX-512F, for AVX2+FMA and for the baseline ISA; the addon picks
# the best the CPU runs (RESNET_NATIVE_ISA forces one, see src/backends/native).
{
  'target_defaults': {
    'cflags': ['-O3', '-std=gnu11', '-fPIC', '-fvisibility=hidden', '-Wall', '-Wno-unused-function'],
    'cflags!': ['-O2'],
    'xcode_settings': {
      'GCC_OPTIMIZATION_LEVEL': '3',
      'OTHER_CFLAGS': ['-std=gnu11'],
    },
  },
  'targets': [
    {
      'target_name': 'resnet_native',
      'sources': ['csrc/native/addon.c', 'csrc/native/threadpool.c', 'csrc/native/crc32.c', 'csrc/native/kernels_portable.c'],
      'conditions': [
        ['target_arch=="x64"', {
          'dependencies': ['resnet_kernels_avx2', 'resnet_kernels_avx512'],
          'defines': ['RK_HAVE_AVX2_VARIANT', 'RK_HAVE_AVX512_VARIANT'],
        }],
        ['OS!="win"', {'libraries': ['-lpthread']}],
      ],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'resnet_kernels_avx2',
          'type': 'static_library',
          'sources': ['csrc/native/kernels_avx2.c'],
          'cflags': ['-mavx2', '-mfma'],
          'xcode_settings': {'OTHER_CFLAGS': ['-mavx2', '-mfma']},
        },
        {
          'target_name': 'resnet_kernels_avx512',
          'type': 'static_library',
          'sources': ['csrc/native/kernels_avx512.c'],
          'cflags': ['-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512dq', '-mavx2', '-mfma', '-mprefer-vector-width=512'],
          'xcode_settings': {'OTHER_CFLAGS': ['-mavx512f', '-mavx512vl', '-mavx512bw', '-mavx512dq', '-mavx2', '-mfma', '-mprefer-vector-width=512']},
        },
      ],
    }],
  ],
}
