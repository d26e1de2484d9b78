using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace HmmSim.Kernel;

/// <summary>Throws out of line so that the hot methods that check stay small and inline.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void KernelBug(string message) => throw KernelExceptions.Oops(message);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static T KernelBug<T>(string message) => throw KernelExceptions.Oops(message);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Argument(string paramName, string message) => throw new ArgumentException(message, paramName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Segv(ulong address, string why) => throw KernelExceptions.Sigsegv(address, $"SIGSEGV at 0x{address:x}: {why}");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    public static void Errno(Errno errno, string message) => throw KernelExceptions.ErrnoFailure(errno, message);
}
