/* Start-up for a Cortex-M board: the vector table, and a reset handler
 * that copies .data from flash, zeroes .bss, turns the FPU on where the
 * CPU has one, and runs main with the command line the debugger (or
 * QEMU's -semihosting-config arg=...) gives.  The output and the files go
 * through semihosting (newlib's librdimon, --specs=rdimon.specs): on a
 * real board, replace initialise_monitor_handles by a UART's _write. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start__[], __bss_end__[], __stack_top[];
extern void initialise_monitor_handles(void);
int main(int argc, char **argv);
void Reset_Handler(void);

/* One semihosting call: the debugger (QEMU) does OPERATION with BLOCK. */
static int semihost(int operation, void *block)
{
    register int r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* A fault ends the program with a message instead of hanging the board. */
static void Fault_Handler(void)
{
    static const char message[] = "fault: the program stopped\n";
    semihost(0x04, (void *)message); /* SYS_WRITE0 */
    exit(3);
}

/* The vector table: the initial stack pointer, then the handlers (reset,
 * NMI, hard fault, memory management, bus and usage faults). */
__attribute__((section(".vectors"), used)) static const struct {
    uint32_t *stack;
    void (*handlers[15])(void);
} vectors = {__stack_top, {Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
                           Fault_Handler, Fault_Handler}};

/* SYS_GET_CMDLINE, split at spaces: argv[0] is the program's name. */
static int command_line(char **argv, int most)
{
    static char text[512];
    struct {
        char *buffer;
        int size;
    } block = {text, sizeof text - 1};
    int argc = 0;
    if (semihost(0x15, &block) != 0)
        return 0;
    text[block.size] = 0;
    for (char *p = strtok(text, " "); p && argc < most - 1; p = strtok(NULL, " "))
        argv[argc++] = p;
    argv[argc] = NULL;
    return argc;
}

/* newlib's exit calls these; the C runtime's crti/crtn are not linked
 * (-nostartfiles), and nothing here needs them. */
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void)
{
    static char *argv[16];
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start__, 0, (size_t)((char *)__bss_end__ - (char *)__bss_start__));
#if defined(__ARM_FP)
    /* CPACR: full access to the coprocessors 10 and 11 (the FPU) */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    int argc = command_line(argv, 16);
    exit(main(argc, argv));
}
