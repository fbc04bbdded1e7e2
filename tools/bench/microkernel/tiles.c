// GEMM register tiles on 128-bit wasm SIMD, each repeating one kc = 256 tile in L1 (no memory
// traffic beyond L1): the ceiling of what csrc/gemm.c's micro-kernel can reach on this CPU, and the
// variants tried instead of it. Built and run by run.sh; see docs/benchmarks/training-speed.md.
#include <wasm_simd128.h>
#define NR 8
#define MADD(c,a,b) wasm_f32x4_add(c, wasm_f32x4_mul(a,b))
#ifdef RELAXED
// clang 14's relaxed-SIMD builtin: c + a·b as one fused multiply-add (relaxed madd).
#define FMADD(c,a,b) (v128_t)__builtin_wasm_fma_f32x4((__f32x4)(c),(__f32x4)(a),(__f32x4)(b))
#endif
#define EXP(n) __attribute__((export_name(#n))) n
// 1: the 4x8 tile of csrc/gemm.c: two B vectors, four A values splatted from memory
void EXP(t_loadsplat)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda,*a2=a+2*lda,*a3=a+3*lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00;
  for(int k=0;k<kc;k++,bb+=NR){ v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4);
   v128_t x=wasm_v128_load32_splat(a0+k); c00=MADD(c00,x,b0); c01=MADD(c01,x,b1);
   x=wasm_v128_load32_splat(a1+k); c10=MADD(c10,x,b0); c11=MADD(c11,x,b1);
   x=wasm_v128_load32_splat(a2+k); c20=MADD(c20,x,b0); c21=MADD(c21,x,b1);
   x=wasm_v128_load32_splat(a3+k); c30=MADD(c30,x,b0); c31=MADD(c31,x,b1);}
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);cc+=ldc;wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);cc+=ldc;
  wasm_v128_store(cc,c20);wasm_v128_store(cc+4,c21);cc+=ldc;wasm_v128_store(cc,c30);wasm_v128_store(cc+4,c31);
 }}
// 2: splat by shuffle: load 4 k-values per row, broadcast lanes (XNNPACK's x86 "splat" variant)
#define SPL(v,l) wasm_i32x4_shuffle(v,v,l,l,l,l)
void EXP(t_shuffle)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda,*a2=a+2*lda,*a3=a+3*lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00;
  for(int k=0;k<kc;k+=4){
   const v128_t va0=wasm_v128_load(a0+k), va1=wasm_v128_load(a1+k), va2=wasm_v128_load(a2+k), va3=wasm_v128_load(a3+k);
#define STEP(L) { v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4); bb+=NR; \
   v128_t x=SPL(va0,L); c00=MADD(c00,x,b0); c01=MADD(c01,x,b1); \
   x=SPL(va1,L); c10=MADD(c10,x,b0); c11=MADD(c11,x,b1); \
   x=SPL(va2,L); c20=MADD(c20,x,b0); c21=MADD(c21,x,b1); \
   x=SPL(va3,L); c30=MADD(c30,x,b0); c31=MADD(c31,x,b1); }
   STEP(0) STEP(1) STEP(2) STEP(3)
  }
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);cc+=ldc;wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);cc+=ldc;
  wasm_v128_store(cc,c20);wasm_v128_store(cc+4,c21);cc+=ldc;wasm_v128_store(cc,c30);wasm_v128_store(cc+4,c31);
 }}
// 3: loadsplat unrolled by 2 in k (fewer loop branches)
void EXP(t_unroll2)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda,*a2=a+2*lda,*a3=a+3*lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00;
  for(int k=0;k<kc;k+=2){
#define ST(K) { v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4); bb+=NR; \
   v128_t x=wasm_v128_load32_splat(a0+k+K); c00=MADD(c00,x,b0); c01=MADD(c01,x,b1); \
   x=wasm_v128_load32_splat(a1+k+K); c10=MADD(c10,x,b0); c11=MADD(c11,x,b1); \
   x=wasm_v128_load32_splat(a2+k+K); c20=MADD(c20,x,b0); c21=MADD(c21,x,b1); \
   x=wasm_v128_load32_splat(a3+k+K); c30=MADD(c30,x,b0); c31=MADD(c31,x,b1); }
   ST(0) ST(1)
  }
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);cc+=ldc;wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);cc+=ldc;
  wasm_v128_store(cc,c20);wasm_v128_store(cc+4,c21);cc+=ldc;wasm_v128_store(cc,c30);wasm_v128_store(cc+4,c31);
 }}
// 4: 5x8 loadsplat
void EXP(t_5x8)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda,*a2=a+2*lda,*a3=a+3*lda,*a4=a+4*lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00,c40=c00,c41=c00;
  for(int k=0;k<kc;k++,bb+=NR){ v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4);
   v128_t x=wasm_v128_load32_splat(a0+k); c00=MADD(c00,x,b0); c01=MADD(c01,x,b1);
   x=wasm_v128_load32_splat(a1+k); c10=MADD(c10,x,b0); c11=MADD(c11,x,b1);
   x=wasm_v128_load32_splat(a2+k); c20=MADD(c20,x,b0); c21=MADD(c21,x,b1);
   x=wasm_v128_load32_splat(a3+k); c30=MADD(c30,x,b0); c31=MADD(c31,x,b1);
   x=wasm_v128_load32_splat(a4+k); c40=MADD(c40,x,b0); c41=MADD(c41,x,b1);}
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);cc+=ldc;wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);cc+=ldc;
  wasm_v128_store(cc,c20);wasm_v128_store(cc+4,c21);cc+=ldc;wasm_v128_store(cc,c30);wasm_v128_store(cc+4,c31);cc+=ldc;
  wasm_v128_store(cc,c40);wasm_v128_store(cc+4,c41);
 }}
// 5: 2x16 loadsplat (8 acc, 4 B loads + 2 splats)
void EXP(t_2x16)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c02=c00,c03=c00,c10=c00,c11=c00,c12=c00,c13=c00;
  for(int k=0;k<kc;k++,bb+=16){ v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4),b2=wasm_v128_load(bb+8),b3=wasm_v128_load(bb+12);
   v128_t x=wasm_v128_load32_splat(a0+k); c00=MADD(c00,x,b0); c01=MADD(c01,x,b1); c02=MADD(c02,x,b2); c03=MADD(c03,x,b3);
   x=wasm_v128_load32_splat(a1+k); c10=MADD(c10,x,b0); c11=MADD(c11,x,b1); c12=MADD(c12,x,b2); c13=MADD(c13,x,b3);}
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);wasm_v128_store(cc+8,c02);wasm_v128_store(cc+12,c03);cc+=ldc;
  wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);wasm_v128_store(cc+8,c12);wasm_v128_store(cc+12,c13);
 }}

#ifdef RELAXED
// 6: the 4x8 loadsplat tile with relaxed SIMD's fused multiply-add instead of mul + add
void EXP(t_relaxed_fma)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {
 for (int r=0;r<reps;r++){
  const float *a0=a,*a1=a+lda,*a2=a+2*lda,*a3=a+3*lda; const float *bb=b;
  v128_t c00=wasm_f32x4_splat(0),c01=c00,c10=c00,c11=c00,c20=c00,c21=c00,c30=c00,c31=c00;
  for(int k=0;k<kc;k++,bb+=NR){ v128_t b0=wasm_v128_load(bb),b1=wasm_v128_load(bb+4);
   v128_t x=wasm_v128_load32_splat(a0+k); c00=FMADD(c00,x,b0); c01=FMADD(c01,x,b1);
   x=wasm_v128_load32_splat(a1+k); c10=FMADD(c10,x,b0); c11=FMADD(c11,x,b1);
   x=wasm_v128_load32_splat(a2+k); c20=FMADD(c20,x,b0); c21=FMADD(c21,x,b1);
   x=wasm_v128_load32_splat(a3+k); c30=FMADD(c30,x,b0); c31=FMADD(c31,x,b1);}
  float*cc=c; wasm_v128_store(cc,c00);wasm_v128_store(cc+4,c01);cc+=ldc;wasm_v128_store(cc,c10);wasm_v128_store(cc+4,c11);cc+=ldc;
  wasm_v128_store(cc,c20);wasm_v128_store(cc+4,c21);cc+=ldc;wasm_v128_store(cc,c30);wasm_v128_store(cc+4,c31);
 }}
// 7, 8: relaxed madd with other tile shapes. Without the separate multiply there is no temporary
// register per product, so tiles with more accumulators fit V8's 15 usable vector registers.
#define TILE_RX(NAME, ROWS, VECS)                                                                         \
  void EXP(NAME)(int kc, const float *a, int lda, const float *b, float *c, int ldc, int reps) {       \
    for (int r = 0; r < reps; r++) {                                                                  \
      const float *bb = b;                                                                            \
      v128_t acc[ROWS][VECS];                                                                         \
      for (int i = 0; i < ROWS; i++)                                                                  \
        for (int j = 0; j < VECS; j++) acc[i][j] = wasm_f32x4_splat(0);                               \
      for (int k = 0; k < kc; k++, bb += 4 * VECS) {                                                  \
        v128_t bv[VECS];                                                                              \
        for (int j = 0; j < VECS; j++) bv[j] = wasm_v128_load(bb + 4 * j);                            \
        for (int i = 0; i < ROWS; i++) {                                                              \
          v128_t x = wasm_v128_load32_splat(a + i * lda + k);                                         \
          for (int j = 0; j < VECS; j++) acc[i][j] = FMADD(acc[i][j], x, bv[j]);                      \
        }                                                                                             \
      }                                                                                               \
      for (int i = 0; i < ROWS; i++)                                                                  \
        for (int j = 0; j < VECS; j++) wasm_v128_store(c + i * ldc + 4 * j, acc[i][j]);               \
    }                                                                                                 \
  }
TILE_RX(t_relaxed_3x12, 3, 3)
TILE_RX(t_relaxed_2x16, 2, 4)
TILE_RX(t_relaxed_6x8, 6, 2)
#endif
