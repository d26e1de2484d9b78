using System.Diagnostics;
using System.Globalization;

namespace HmmSim.Cli;

/// <summary>Progress for work that takes more than a second, on stderr so stdout stays clean: a live
/// line redrawn in place when stderr is a terminal, one plain line every <see cref="PeriodicSeconds"/>
/// seconds when it is not (CI logs). Work reports where it is through <see cref="Tick"/>. Nothing is
/// written for in-process callers (tests) whose output is not the process's own.</summary>
internal static class Progress
{
    public const int PeriodicSeconds = 10;

    private static volatile string _current = "";

    /// <summary>Where the running work is ("DeviceAddressSpace: step 12"); null when nothing is shown.</summary>
    public static Action<string>? Tick { get; private set; }

    public static T Run<T>(string title, bool machineOutput, Func<T> work) => Run(title, machineOutput, Console.Out, work);

    public static T Run<T>(string title, bool machineOutput, TextWriter output, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        _ = machineOutput;   // JSON and --quiet keep stdout clean either way: progress goes to stderr.
        if (!ReferenceEquals(output, Console.Out) || Tick is not null)
            return work();
        bool live = !Console.IsErrorRedirected;
        var clock = Stopwatch.StartNew();
        long lastLine = 0;
        bool drawn = false;
        var gate = new Lock();
        _current = "";
        Tick = s => _current = s;
        void Show(object? _)
        {
            lock (gate)
            {
                long ms = clock.ElapsedMilliseconds;
                if (ms < 1000 || Tick is null)
                    return;
                string text = $"hmmsim: {title}{(_current.Length > 0 ? ": " + _current : "")} ({(ms / 1000.0).ToString("N1", CultureInfo.InvariantCulture)} s, Ctrl-C for a partial summary)";
                if (live)
                {
                    int width = Math.Max(20, Terminal.Width(Console.Out) - 1);
                    Console.Error.Write("\r" + (text.Length > width ? text[..(width - 1)] + "…" : text.PadRight(width)));
                    drawn = true;
                }
                else if (ms - lastLine >= PeriodicSeconds * 1000)
                {
                    lastLine = ms;
                    Console.Error.WriteLine(text);
                }
            }
        }
        using (var timer = new Timer(Show, null, 250, 250))
        {
            try
            {
                return work();
            }
            finally
            {
                timer.Change(Timeout.Infinite, Timeout.Infinite);
                lock (gate)
                {
                    Tick = null;
                    if (drawn)
                        Console.Error.Write("\r" + new string(' ', Math.Max(20, Terminal.Width(Console.Out) - 1)) + "\r");
                }
            }
        }
    }
}
