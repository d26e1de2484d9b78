using System.Runtime.CompilerServices;

namespace HmmSim.Tests;

internal static class TestAssembly
{
    /// <summary>Machine's static constructor installs the factory that turns a kernel oops into a public
    /// <see cref="KernelBugException"/>. Tests that drive kernel internals without building a Machine
    /// (a spinlock, a KernelState of their own) would otherwise see the internal exception type, or the
    /// public one, depending on whether another test happened to build a Machine first.</summary>
#pragma warning disable CA2255 // a test assembly's one-time setup, not a library's
    [ModuleInitializer]
    internal static void Init() => RuntimeHelpers.RunClassConstructor(typeof(Machine).TypeHandle);
#pragma warning restore CA2255
}
