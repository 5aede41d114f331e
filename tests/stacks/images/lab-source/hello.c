/* Compiled by the builder stage of tests/stacks/images/lab-source/Dockerfile. */
#include <stdio.h>

int main(void) {
    puts("compiled in the builder stage");
    return 0;
}
