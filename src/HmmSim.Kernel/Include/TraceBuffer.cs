using System.Diagnostics;
using System.Globalization;

namespace HmmSim.Kernel;

/// <summary>The ftrace ring buffer as a reader of /sys/kernel/tracing/trace_pipe sees it: every event
/// becomes one line of ftrace's text format ("comm-pid [cpu] flags timestamp: event: fields"), the
/// format `trace-cmd report` prints and Perfetto's systrace importer reads. The model has no ring to
/// overwrite: events stream to the writer in the order they were recorded.</summary>
internal sealed class TraceBuffer
{
    private readonly TextWriter _out;
    private readonly Lock _lock = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _entries;

    public TraceBuffer(TextWriter writer, int cpus)
    {
        _out = writer;
        // The header the trace file starts with (tracer nop, the latency-format legend).
        _out.Write(string.Create(CultureInfo.InvariantCulture, $"""
            # tracer: nop
            #
            # entries-in-buffer/entries-written: streamed   #P:{cpus}
            #
            #                                _-----=> irqs-off/BH-disabled
            #                               / _----=> need-resched
            #                              | / _---=> hardirq/softirq
            #                              || / _--=> preempt-depth
            #                              ||| / _-=> migrate-disable
            #                              |||| /     delay
            #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
            #              | |         |   |||||     |         |

            """).ReplaceLineEndings("\n"));
    }

    /// <summary>Events written so far.</summary>
    public long Entries => Interlocked.Read(ref _entries);

    /// <summary>Record one event of task <paramref name="pid"/> (0 when no task's mm is involved).</summary>
    public void Event(int pid, string name, string fields)
    {
        long us = _clock.Elapsed.Ticks / TimeSpan.TicksPerMicrosecond;
        var comm = pid == 0 ? "<idle>" : "hmmsim";
        int cpu = Environment.CurrentManagedThreadId % Math.Max(1, Environment.ProcessorCount);
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{comm,16}-{pid,-7} [{cpu:000}] ..... {us / 1_000_000,5}.{us % 1_000_000:000000}: {name}: {fields}\n");
        lock (_lock)
        {
            _out.Write(line);
            _entries++;
        }
    }

    public void Flush()
    {
        lock (_lock)
            _out.Flush();
    }
}
