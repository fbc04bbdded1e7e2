# Each instance of the module (one per thread, all on one shared memory) needs its own stack:
# the linker gives every instance the same initial __stack_pointer, so worker threads move theirs
# to a region the JavaScript side allocated for them before running any kernel.
  .globaltype __stack_pointer, i32
  .globl set_stack_pointer
  .type set_stack_pointer,@function
set_stack_pointer:
  .functype set_stack_pointer (i32) -> ()
  local.get 0
  global.set __stack_pointer
  end_function
