using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using HmmSim.Cli.Report;
using HmmSim.Cli.Workloads;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>`hmmsim bench mm`: the mm-core figures, measured once (BenchmarkDotNet in bench/ for rigour).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the model. Example: hmmsim bench mm --size-mib 1024");
        var mm = new Command("mm", "Anonymous fault rates (4 KiB and THP), fork, page-table walk, metadata per page.");
        var size = new Option<int>("--size-mib") { Description = "Size of the populated region in MiB.", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var report = ReportOption();
        mm.Options.Add(size);
        mm.Options.Add(json);
        mm.Options.Add(report);
        mm.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int mib = r.GetValue(size);
            if (mib <= 0 || mib % 2 != 0 || mib > 4096)
            {
                error.WriteLine($"hmmsim bench mm: --size-mib must be an even number from 2 to 4096, not {mib}");
                return 2;
            }
            var figures = Progress.Run($"measuring the mm core over {mib} MiB", r.GetValue(json), () => MmWorkloads.Measure((ulong)mib * MmWorkloads.Mib));
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench mm", path, () => HtmlReport.ForMm(figures, mib)))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(figures.Select(f => new { name = f.Name, value = f.Value, unit = f.Unit })));
                return 0;
            }
            var table = new Table().AddColumn("figure").AddColumn(new TableColumn("value").RightAligned()).AddColumn("unit");
            foreach (var f in figures)
                table.AddRow(Markup.Escape(f.Name), f.Value.ToString("N1"), f.Unit);
            RunCommand.Console(output).Write(table);
            return 0;
        });
        bench.Subcommands.Add(mm);
        bench.Subcommands.Add(MigrateCommand());
        bench.Subcommands.Add(FaultCommand());
        bench.Subcommands.Add(P2pCommand());
        bench.Subcommands.Add(RegisterCommand());
        bench.Subcommands.Add(SoakCommand());
        bench.Subcommands.Add(ScaleCommand());
        bench.Subcommands.Add(ChecksCommand());
        return bench;
    }

    private static Option<string?> ReportOption() =>
        new("--report") { Description = "Also write a self-contained HTML report (figures table, bar chart, layouts) to this file." };

    private static Option<string> DesignOption() =>
        new("--design") { Description = "PhysicalAddressSpace or DeviceAddressSpace.", DefaultValueFactory = _ => "DeviceAddressSpace" };

    private static bool TryDesign(string text, out DevicePrivateDesign design) =>
        Enum.TryParse(text, ignoreCase: true, out design) && Enum.IsDefined(design);

    /// <summary>`hmmsim bench migrate`: benchmark_thp_migration beside this machine's memcpy bandwidth.</summary>
    private static Command MigrateCommand()
    {
        var cmd = new Command("migrate", "The kernel's benchmark_thp_migration table (sys->dev, dev->sys; 1/4 to 128 THPs; with and without THP) beside memcpy. Example: hmmsim bench migrate --iterations 5");
        var design = DesignOption();
        var iterations = new Option<int>("--iterations") { Description = "Timed rounds per size (after untimed warm-up rounds).", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var sizes = new Option<int[]>("--size-kib") { Description = "Only these sizes in KiB (repeatable; default: the test's seven, 512 KiB to 256 MiB).", AllowMultipleArgumentsPerToken = true };
        cmd.Options.Add(design);
        var report = ReportOption();
        cmd.Options.Add(iterations);
        cmd.Options.Add(sizes);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            var only = r.GetValue(sizes) is { Length: > 0 } kib ? kib.Select(k => (ulong)k << 10).ToArray() : null;
            if (!TryDesign(r.GetValue(design)!, out var d) || r.GetValue(iterations) is < 1 or > 1000 || only?.Any(b => b is < 4096 or > 1UL << 30 || b % 4096 != 0) == true)
            {
                error.WriteLine("hmmsim bench migrate: --design must be PhysicalAddressSpace or DeviceAddressSpace, --iterations 1..1000 and --size-kib a multiple of 4 up to 1048576");
                return 2;
            }
            var (memcpy, rows) = Progress.Run("benchmark_thp_migration", r.GetValue(json), () => (HmmWorkloads.MemcpyGBs(), HmmWorkloads.ThpMigration(d, r.GetValue(iterations), only)));
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench migrate", path, () => HtmlReport.ForMigrate(d, memcpy, rows)))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    design = d.ToString(),
                    memcpyGBs = memcpy,
                    rows = rows.Select(x => new
                    {
                        bytes = x.Bytes,
                        thp = x.Thp,
                        sysToDevMs = x.SysToDevMs,
                        sysToDevMinMs = x.SysToDevMinMs,
                        sysToDevMaxMs = x.SysToDevMaxMs,
                        sysToDevGBs = x.SysToDevGBs,
                        memcpyMs = x.MemcpyMs,
                        sysToDevOf256MiBMemcpy = x.SysToDevGBs / memcpy,
                        devToSysOf256MiBMemcpy = x.DevToSysGBs / memcpy,
                        sysToDevOfMemcpy = x.SysToDevOfMemcpy.Median,
                        sysToDevOfMemcpyMin = x.SysToDevOfMemcpy.Min,
                        sysToDevOfMemcpyMax = x.SysToDevOfMemcpy.Max,
                        devToSysMs = x.DevToSysMs,
                        devToSysMinMs = x.DevToSysMinMs,
                        devToSysMaxMs = x.DevToSysMaxMs,
                        devToSysGBs = x.DevToSysGBs,
                        devToSysOfMemcpy = x.DevToSysOfMemcpy.Median,
                        devToSysOfMemcpyMin = x.DevToSysOfMemcpy.Min,
                        devToSysOfMemcpyMax = x.DevToSysOfMemcpy.Max,
                    }),
                }));
                return 0;
            }
            var table = new Table().Title($"benchmark_thp_migration ({d}); memcpy {memcpy:N1} GB/s; medians of {r.GetValue(iterations)} rounds")
                .AddColumn("size").AddColumn("THP").AddColumn(new TableColumn("sys->dev ms (min-max)").RightAligned()).AddColumn(new TableColumn("GB/s").RightAligned())
                .AddColumn(new TableColumn("of memcpy (min-max)").RightAligned()).AddColumn(new TableColumn("dev->sys ms (min-max)").RightAligned()).AddColumn(new TableColumn("GB/s").RightAligned())
                .AddColumn(new TableColumn("of memcpy (min-max)").RightAligned());
            foreach (var x in rows)
            {
                table.AddRow(Size(x.Bytes), x.Thp ? "yes" : "no", $"{x.SysToDevMs:N3} ({x.SysToDevMinMs:N3}-{x.SysToDevMaxMs:N3})", x.SysToDevGBs.ToString("N2"), Ratio(x.SysToDevOfMemcpy),
                    $"{x.DevToSysMs:N3} ({x.DevToSysMinMs:N3}-{x.DevToSysMaxMs:N3})", x.DevToSysGBs.ToString("N2"), Ratio(x.DevToSysOfMemcpy));
            }
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench fault`: hmm_range_fault snapshot throughput.</summary>
    private static Command FaultCommand()
    {
        var cmd = new Command("fault", "hmm_range_fault throughput (pages/s) over a populated range, by SNAPSHOT ioctl and by one call. Example: hmmsim bench fault --size-mib 1024");
        var design = DesignOption();
        var size = new Option<int>("--size-mib") { Description = "Size of the populated range in MiB.", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(design);
        var report = ReportOption();
        cmd.Options.Add(size);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int mib = r.GetValue(size);
            if (!TryDesign(r.GetValue(design)!, out var d) || mib is < 1 or > 4096)
            {
                error.WriteLine("hmmsim bench fault: --design must be PhysicalAddressSpace or DeviceAddressSpace and --size-mib 1..4096");
                return 2;
            }
            var (ioctl, call) = Progress.Run($"hmm_range_fault over {mib} MiB", r.GetValue(json), () => HmmWorkloads.SnapshotThroughput(d, (ulong)mib << 20));
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench fault", path, () => HtmlReport.ForFault(d, mib, ioctl, call)))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new { design = d.ToString(), sizeMib = mib, snapshotIoctlPagesPerSec = ioctl, hmmRangeFaultPagesPerSec = call }));
                return 0;
            }
            var table = new Table().AddColumn("figure").AddColumn(new TableColumn("pages/s").RightAligned());
            table.AddRow($"SNAPSHOT ioctl over {mib} MiB (32-page windows)", ioctl.ToString("N0"));
            table.AddRow($"one hmm_range_fault over {mib} MiB", call.ToString("N0"));
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench p2p`: bytes through RAM (the CPU round trip) vs over the P2P alias.</summary>
    private static Command P2pCommand()
    {
        var cmd = new Command("p2p", "One buffer read by a second device: migrated through RAM vs read over the owner's BAR, per PCI topology. Example: hmmsim bench p2p --size-mib 64");
        var design = DesignOption();
        var size = new Option<int>("--size-mib") { Description = "Buffer size in MiB.", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(design);
        cmd.Options.Add(size);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int mib = r.GetValue(size);
            if (!TryDesign(r.GetValue(design)!, out var d) || mib is < 1 or > 1024)
            {
                error.WriteLine("hmmsim bench p2p: --design must be PhysicalAddressSpace or DeviceAddressSpace and --size-mib 1..1024");
                return 2;
            }
            var rows = Progress.Run("P2P read, both ways, both topologies", r.GetValue(json), () => P2pWorkload.Run(d, (ulong)mib << 20));
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(rows.Select(x => new { mode = x.Mode, topology = x.Topology.ToString(), pagesMigratedToRam = x.PagesMigratedToRam, bytesThroughRam = x.BytesThroughRam, bytesOverAlias = x.BytesOverAlias, ms = x.Ms, dataOk = x.DataOk })));
                return rows.All(x => x.DataOk) ? 0 : 1;
            }
            var table = new Table().Title($"{mib} MiB read by unit 1 from unit 0's memory ({d})")
                .AddColumn("topology").AddColumn("importer").AddColumn(new TableColumn("pages migrated to RAM").RightAligned())
                .AddColumn(new TableColumn("MiB through RAM").RightAligned()).AddColumn(new TableColumn("MiB over the alias").RightAligned())
                .AddColumn(new TableColumn("ms").RightAligned()).AddColumn("data");
            foreach (var x in rows)
                table.AddRow(x.Topology.ToString(), x.Mode, x.PagesMigratedToRam.ToString("N0"), (x.BytesThroughRam / 1048576.0).ToString("N1"), (x.BytesOverAlias / 1048576.0).ToString("N1"), x.Ms.ToString("N1"), x.DataOk ? "ok" : "WRONG");
            RunCommand.Console(output).Write(table);
            return rows.All(x => x.DataOk) ? 0 : 1;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench register`: time and bytes to register N GiB of device-private memory per design.</summary>
    private static Command RegisterCommand()
    {
        var cmd = new Command("register", "Register N GiB of device-private memory in each design: time, model bytes, kernel struct pages. Example: hmmsim bench register --size-gib 1024");
        var size = new Option<int>("--size-gib") { Description = "GiB of device-private memory to register.", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(size);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int gib = r.GetValue(size);
            if (gib is < 1 or > 16384)
            {
                error.WriteLine("hmmsim bench register: --size-gib must be 1..16384");
                return 2;
            }
            var rows = Progress.Run($"registering {gib} GiB", r.GetValue(json), () => RegisterWorkload.Run((ulong)gib << 30));
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(rows.Select(x => new { design = x.Design.ToString(), bytes = x.Bytes, error = x.Error.ToString(), ms = x.Ms, modelBytes = x.ModelBytes, kernelStructPageBytes = x.KernelStructPageBytes, modelBytesAfterFirstUse = x.ModelBytesAfterFirstUse })));
                return 0;
            }
            var table = new Table().Title($"registering {gib} GiB of device-private memory")
                .AddColumn("design").AddColumn("result").AddColumn(new TableColumn("ms").RightAligned())
                .AddColumn(new TableColumn("model bytes").RightAligned()).AddColumn(new TableColumn("after 2 pages used").RightAligned())
                .AddColumn(new TableColumn("kernel struct pages").RightAligned());
            foreach (var x in rows)
                table.AddRow(x.Design.ToString(), x.Error == Errno.None ? "ok" : x.Error.ToString(), x.Ms.ToString("N2"), x.ModelBytes.ToString("N0"),
                    x.ModelBytesAfterFirstUse.ToString("N0"), $"{x.KernelStructPageBytes / 1048576.0:N0} MiB");
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench soak`: peak RSS over many migrate rounds, managed heap over many machines.</summary>
    private static Command SoakCommand()
    {
        var cmd = new Command("soak", "Memory that stays flat: rounds of {mmap, fill, migrate to the device and back, munmap}, then machines created and disposed; peak RSS (VmHWM), RSS and the managed heap after a full GC. Example: hmmsim bench soak --rounds 200 --machines 50 --size-mib 64");
        var design = DesignOption();
        var rounds = new Option<int>("--rounds") { Description = "Rounds on one machine.", DefaultValueFactory = _ => 200 };
        var machines = new Option<int>("--machines") { Description = "Machines created, used once and disposed.", DefaultValueFactory = _ => 50 };
        var size = new Option<int>("--size-mib") { Description = "Buffer size in MiB.", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(design);
        cmd.Options.Add(rounds);
        cmd.Options.Add(machines);
        cmd.Options.Add(size);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int mib = r.GetValue(size), n = r.GetValue(rounds), k = r.GetValue(machines);
            if (!TryDesign(r.GetValue(design)!, out var d) || mib is < 1 or > 1024 || n is < 1 or > 100_000 || k is < 0 or > 10_000)
            {
                error.WriteLine("hmmsim bench soak: --design must be PhysicalAddressSpace or DeviceAddressSpace, --size-mib 1..1024, --rounds 1..100000, --machines 0..10000");
                return 2;
            }
            var (roundSamples, machineSamples) = Progress.Run($"{n} rounds of {mib} MiB, {k} machines", r.GetValue(json), () => HmmWorkloads.Soak(d, n, k, (ulong)mib << 20));
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    design = d.ToString(),
                    sizeMib = mib,
                    rounds = roundSamples.Select(x => new { round = x.Round, peakRssBytes = x.PeakRssBytes, rssBytes = x.RssBytes, managedBytes = x.ManagedBytes }),
                    machines = machineSamples.Select(x => new { machine = x.Round, peakRssBytes = x.PeakRssBytes, rssBytes = x.RssBytes, managedBytes = x.ManagedBytes }),
                }));
                return 0;
            }
            var table = new Table().Title($"{mib} MiB: mmap, fill, migrate to the device and back, munmap")
                .AddColumn("after").AddColumn(new TableColumn("peak RSS MiB").RightAligned()).AddColumn(new TableColumn("RSS MiB").RightAligned())
                .AddColumn(new TableColumn("managed heap MiB").RightAligned());
            foreach (var x in roundSamples)
                table.AddRow($"round {x.Round}", (x.PeakRssBytes >> 20).ToString("N0"), (x.RssBytes >> 20).ToString("N0"), (x.ManagedBytes >> 20).ToString("N0"));
            foreach (var x in machineSamples)
                table.AddRow($"machine {x.Round} disposed", (x.PeakRssBytes >> 20).ToString("N0"), (x.RssBytes >> 20).ToString("N0"), (x.ManagedBytes >> 20).ToString("N0"));
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench scale`: H200- and MI300X-class GPU memory beside 2 TiB of RAM, both designs.</summary>
    private static Command ScaleCommand()
    {
        var cmd = new Command("scale", "GPU memory of real shapes (8 x 141 GiB H200-class, 8 x 192 GiB MI300X-class) registered beside 2 TiB of RAM in both designs; a same-filled working set migrated to the device and back, every page verified. Example: hmmsim bench scale --working-set-gib 16");
        var size = new Option<int>("--working-set-gib") { Description = "GiB migrated to the device and back (one word per page).", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(size);
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            int gib = r.GetValue(size);
            if (gib is < 1 or > 1024)
            {
                error.WriteLine("hmmsim bench scale: --working-set-gib must be 1..1024");
                return 2;
            }
            var progress = new BenchProgress(error, Console.IsErrorRedirected);
            var registrations = new List<ScaleWorkload.Registration>();
            var migrations = new List<ScaleWorkload.Migration>();
            foreach (var d in Enum.GetValues<DevicePrivateDesign>())
            {
                progress.Report($"{d}: registering", 0);
                registrations.AddRange(ScaleWorkload.Register(d));
                migrations.Add(ScaleWorkload.Migrate(d, (ulong)gib << 30, (what, f) => progress.Report($"{d}: {gib} GiB {what}", f)));
            }
            progress.Done();
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    ramBytes = ScaleWorkload.RamBytes,
                    registrations = registrations.Select(x => new
                    {
                        design = x.Design.ToString(),
                        shape = x.Shape,
                        deviceBytes = x.DeviceBytes,
                        ms = x.Ms,
                        kernelStructPageBytes = x.KernelStructPageBytes,
                        kernelMemmapPagesInitialised = x.KernelMemmapPagesInitialised,
                        modelMemmapBytes = x.ModelMemmapBytes,
                        modelMemmapPagesInitialised = x.ModelMemmapPagesInitialised,
                    }),
                    migrations = migrations.Select(x => new
                    {
                        design = x.Design.ToString(),
                        workingSetBytes = x.Bytes,
                        pages = x.Pages,
                        sysToDevPagesPerSec = x.SysToDevPagesPerSec,
                        sysToDevWindowPagesPerSecMedian = x.SysToDevWindow.Median,
                        sysToDevWindowPagesPerSecMin = x.SysToDevWindow.Min,
                        sysToDevWindowPagesPerSecMax = x.SysToDevWindow.Max,
                        devToSysPagesPerSec = x.DevToSysPagesPerSec,
                        devToSysWindowPagesPerSecMedian = x.DevToSysWindow.Median,
                        devToSysWindowPagesPerSecMin = x.DevToSysWindow.Min,
                        devToSysWindowPagesPerSecMax = x.DevToSysWindow.Max,
                        fillOfMigrateToDevMedian = x.FillOfMigrateToDev.Median,
                        fillOfMigrateToDevMin = x.FillOfMigrateToDev.Min,
                        fillOfMigrateToDevMax = x.FillOfMigrateToDev.Max,
                        modelSeconds = x.ModelSeconds,
                        peakRssBytes = x.PeakRssBytes,
                        pageDataBytes = x.PageDataBytes,
                        sameFilledPages = x.SameFilledPages,
                        structPageBytesKernel = x.StructPageBytesKernel,
                        structPageBytesModel = x.ModelMemmapBytes,
                        pagesVerified = x.PagesVerified,
                    }),
                }));
                return 0;
            }
            var reg = new Table().Title("device-private memory registered beside 2 TiB of RAM")
                .AddColumn("design").AddColumn("shape").AddColumn(new TableColumn("GiB").RightAligned()).AddColumn(new TableColumn("ms").RightAligned())
                .AddColumn(new TableColumn("kernel struct pages MiB").RightAligned()).AddColumn(new TableColumn("kernel memmap pages initialised").RightAligned())
                .AddColumn(new TableColumn("model memmap MiB").RightAligned()).AddColumn(new TableColumn("model pages initialised").RightAligned());
            foreach (var x in registrations)
                reg.AddRow(x.Design.ToString(), x.Shape, (x.DeviceBytes >> 30).ToString("N0"), x.Ms.ToString("N1"), (x.KernelStructPageBytes >> 20).ToString("N0"),
                    x.KernelMemmapPagesInitialised.ToString("N0"), (x.ModelMemmapBytes / 1048576.0).ToString("N1"), x.ModelMemmapPagesInitialised.ToString("N0"));
            var mig = new Table().Title($"{gib} GiB of same-filled pages to a device and back, every page verified (pages/s per 64 MiB window: median (min-max))")
                .AddColumn("design").AddColumn(new TableColumn("sys->dev pages/s").RightAligned()).AddColumn(new TableColumn("dev->sys pages/s").RightAligned())
                .AddColumn(new TableColumn("model s").RightAligned()).AddColumn(new TableColumn("peak RSS MiB").RightAligned()).AddColumn(new TableColumn("verified").RightAligned());
            foreach (var x in migrations)
                mig.AddRow(x.Design.ToString(), $"{x.SysToDevWindow.Median:N0} ({x.SysToDevWindow.Min:N0}-{x.SysToDevWindow.Max:N0})",
                    $"{x.DevToSysWindow.Median:N0} ({x.DevToSysWindow.Min:N0}-{x.DevToSysWindow.Max:N0})", x.ModelSeconds.ToString("N1"), (x.PeakRssBytes >> 20).ToString("N0"), x.PagesVerified.ToString("N0"));
            var console = RunCommand.Console(output);
            console.Write(reg);
            console.Write(mig);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench checks`: DEBUG_VM cost per CPU access, checks on against off, on a 1 TiB machine.</summary>
    private static Command ChecksCommand()
    {
        var cmd = new Command("checks", "What the DEBUG_VM checker costs per CPU access on a 1 TiB machine with a sparsely touched 512 GiB mapping: checks on against off in the same run, and one full walk. Example: hmmsim bench checks --json");
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        cmd.Options.Add(json);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var x = Progress.Run("checks on and off over a 1 TiB machine", r.GetValue(json), () => ChecksWorkload.Run());
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    ramBytes = x.RamBytes,
                    mappingBytes = x.MappingBytes,
                    pagesTouched = x.PagesTouched,
                    accessesPerRound = x.Accesses,
                    offUsPerAccessMedian = x.OffUs.Median,
                    offUsPerAccessMin = x.OffUs.Min,
                    offUsPerAccessMax = x.OffUs.Max,
                    onUsPerAccessMedian = x.OnUs.Median,
                    onUsPerAccessMin = x.OnUs.Min,
                    onUsPerAccessMax = x.OnUs.Max,
                    onOverOffMedian = x.OnOverOffMedian,
                    fullWalkMs = x.FullWalkMs,
                }));
                return 0;
            }
            var table = new Table().Title($"CPU reads of a sparsely touched {x.MappingBytes >> 30} GiB mapping on a {x.RamBytes >> 30} GiB machine")
                .AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
            table.AddRow("checks off, us per access: median (min-max)", $"{x.OffUs.Median:N2} ({x.OffUs.Min:N2}-{x.OffUs.Max:N2})");
            table.AddRow("checks on (local), us per access: median (min-max)", $"{x.OnUs.Median:N2} ({x.OnUs.Min:N2}-{x.OnUs.Max:N2})");
            table.AddRow("on / off, median of rounds", $"{x.OnOverOffMedian:N2}x");
            table.AddRow("one full walk (teardown, on demand), ms", x.FullWalkMs.ToString("N2"));
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>Progress of a long bench on stderr: one live line on a terminal, a line every ten seconds
    /// otherwise (so a log shows it is alive without flooding).</summary>
    private sealed class BenchProgress(TextWriter error, bool redirected)
    {
        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private double _lastLine = double.NegativeInfinity;

        public void Report(string what, double fraction)
        {
            double now = _watch.Elapsed.TotalSeconds;
            if (!redirected)
            {
                error.Write($"\r{what}: {fraction:P0} ({now:N0} s)   ");
                return;
            }
            if (now - _lastLine < 10)
                return;
            _lastLine = now;
            error.WriteLine($"{what}: {fraction:P0} ({now:N0} s)");
        }

        public void Done()
        {
            if (!redirected)
                error.WriteLine();
        }
    }

    private static string Ratio((double Median, double Min, double Max) r) => $"{r.Median:P1} ({r.Min:P0}-{r.Max:P0})";

    private static string Size(ulong bytes) => bytes >= 1UL << 20 ? $"{bytes >> 20} MiB" : $"{bytes >> 10} KiB";
}
