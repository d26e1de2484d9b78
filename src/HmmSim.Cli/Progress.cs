using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>A status spinner around long work when a person is watching: only on a terminal, never
/// for --json or --quiet output, and it writes nothing when output is redirected.</summary>
internal static class Progress
{
    public static T Run<T>(string title, bool machineOutput, Func<T> work)
    {
        if (machineOutput || Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
            return work();
        T result = default!;
        AnsiConsole.Status().Spinner(Spinner.Known.Dots).Start(title, _ => result = work());
        return result;
    }
}
