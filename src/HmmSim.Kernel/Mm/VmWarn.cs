using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>WARN_ON / VM_WARN_ON(_ONCE): the warning goes to the kernel log; with the DEBUG_VM
/// checker on (MachineConfig.CheckInvariants) it is also a KernelBugException, so a
/// test fails where the kernel would splat. Returns the condition, as WARN_ON does. Build a message
/// with values only under the condition (<c>if (c) VmWarn.Warn(...)</c>): no string on the hot path.</summary>
internal static class VmWarn
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool On(KernelState kernel, bool condition, string what)
    {
        if (condition)
            Warn(kernel, what);
        return condition;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static bool Warn(KernelState kernel, string what)
    {
        kernel.Dmesg.Log($"WARNING: {what}");
        if (kernel.Config.CheckInvariants)
            ThrowHelper.KernelBug($"WARN_ON: {what}");
        return true;
    }
}
