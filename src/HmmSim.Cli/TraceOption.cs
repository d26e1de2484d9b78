using System.CommandLine;
using System.CommandLine.Invocation;

namespace HmmSim.Cli;

/// <summary>`--trace FILE`: every machine a verb boots traces into FILE, in ftrace's text format
/// (docs/tracing.md). Added to a verb around its own action, so the verb's code needs no changes.</summary>
internal static class TraceOption
{
    public static Command AddTo(Command cmd)
    {
        var trace = new Option<string?>("--trace")
        {
            Description = "Write the kernel's trace events (page faults, migrate_vma_*, hmm_range_fault, mmu notifier "
                + "invalidations, migrate_to_ram, P2P aliases) to FILE in ftrace text format (trace-cmd report, Perfetto).",
            HelpName = "FILE",
        };
        cmd.Options.Add(trace);
        var inner = cmd.Action as SynchronousCommandLineAction
            ?? throw new InvalidOperationException($"{cmd.Name} has no synchronous action to trace");
        cmd.SetAction(r =>
        {
            if (r.GetValue(trace) is not { } path)
                return inner.Invoke(r);
            var error = r.InvocationConfiguration.Error;
            StreamWriter writer;
            try
            {
                if (Directory.Exists(path))
                    throw new IOException("is a directory");
                writer = new StreamWriter(path, append: false) { AutoFlush = false };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                error.WriteLine($"hmmsim {cmd.Name}: --trace {path}: {e.Message}");
                return 2;
            }
            using (writer)
            {
                Machine.TraceEveryMachineTo(writer);
                int code;
                long events;
                try
                {
                    code = inner.Invoke(r);
                }
                finally
                {
                    events = Machine.TraceEveryMachineTo(null);
                }
                error.WriteLine($"trace: {events} events written to {path}");
                return code;
            }
        });
        return cmd;
    }
}
