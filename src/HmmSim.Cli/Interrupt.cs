using System.Runtime.InteropServices;

namespace HmmSim.Cli;

/// <summary>Ctrl-C (SIGINT): the first one asks long work to stop at its next step so the verb can
/// print a partial summary and exit 130 (128 + SIGINT, as shells report it); the work checks
/// <see cref="Requested"/> between steps, cases or rounds.</summary>
internal static class Interrupt
{
    /// <summary>The exit code after an interrupt.</summary>
    public const int ExitCode = 130;

    private static int _requested;
    private static PosixSignalRegistration? _registration;

    public static bool Requested => Volatile.Read(ref _requested) != 0;

    /// <summary>Installs the handler (once per process; Main calls it, in-process tests do not).</summary>
    public static void Install()
    {
        _registration ??= PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            // Keep the process alive for the summary; a second Ctrl-C ends it at once.
            if (Interlocked.Exchange(ref _requested, 1) == 0)
                c.Cancel = true;
        });
    }

    /// <summary>For tests: as if Ctrl-C had been pressed (or not).</summary>
    public static void Set(bool requested) => Volatile.Write(ref _requested, requested ? 1 : 0);
}
