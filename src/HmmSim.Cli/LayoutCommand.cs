using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Layout;
using HmmSim.Cli.Workloads;
using HmmSim.Kernel;

namespace HmmSim.Cli;

/// <summary>`hmmsim layout`: boot a machine in one or both designs and show its address spaces:
/// /proc/iomem, the device-private address space, optionally an SVG drawing or JSON.</summary>
internal static class LayoutCommand
{
    public const string Name = "layout";

    public static Command Create() => Create(Console.Out, Console.Error);

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command(Name, "Boot a machine (with the 4 dmirror test devices) and show its physical and device-private address spaces per design. "
            + $"Default: the seeds' VM (x86-64, {SeedMachines.PhysicalAddressBits}-bit, {Units.Human(SeedMachines.RamBytes)} RAM, PCI window [{Units.Human(SeedMachines.RamBytes)}, 2^{SeedMachines.PhysicalAddressBits})). Example: hmmsim layout --phys-bits 46 --pci-window none --svg layout.svg");
        var arch = new Option<string>("--arch") { Description = "X86_64 or Arm64.", DefaultValueFactory = _ => new MachineConfig().Architecture.ToString() };
        var physBits = new Option<string>("--phys-bits") { Description = "Physical address width in bits.", DefaultValueFactory = _ => SeedMachines.PhysicalAddressBits.ToString(CultureInfo.InvariantCulture) };
        var ram = new Option<string>("--ram") { Description = "System RAM size, e.g. 8GiB, 512MiB, 0x200000000.", DefaultValueFactory = _ => $"{SeedMachines.RamBytes >> 30}GiB" };
        var pci = new Option<string[]>("--pci-window")
        {
            Description = "A PCI host bridge window start:length (e.g. 8GiB:1TiB, 0x200000000:2^40); repeatable; 'none' for no window. Default: one window from the end of RAM to the top of the physical space.",
            AllowMultipleArgumentsPerToken = false,
        };
        var design = new Option<string>("--design") { Description = CliOptions.DesignHelp + " Default: both.", DefaultValueFactory = _ => "both" };
        var set = MachineOverrides.Option();
        var report = CliOptions.Report();
        var svg = new Option<string?>("--svg") { Description = "Also write an SVG drawing of the address spaces to this file." };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text." };
        cmd.Options.Add(arch);
        cmd.Options.Add(physBits);
        cmd.Options.Add(ram);
        cmd.Options.Add(pci);
        cmd.Options.Add(design);
        cmd.Options.Add(svg);
        cmd.Options.Add(json);
        cmd.Options.Add(set);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            if (!TryConfigs(r.GetValue(arch)!, r.GetValue(physBits)!, r.GetValue(ram)!, r.GetValue(pci) ?? [], r.GetValue(design)!, out var configs, out var error))
                return Fail(stderr, error);
            if (!MachineOverrides.TryParse(r.GetValue(set), out var overrides, out error))
                return Fail(stderr, error);
            if (overrides.Designs is { } ds)
                configs = [.. ds.Select(d => configs[0] with { DevicePrivateDesign = d })];
            configs = [.. configs.Select(overrides.Apply)];
            foreach (var c in configs)
                if (MachineOverrides.Check(c) is { } problem)
                    return Fail(stderr, problem);
            bool seedVm = r.GetResult(physBits) is null or { Implicit: true } && r.GetResult(ram) is null or { Implicit: true } && (r.GetValue(pci) ?? []).Length == 0 && overrides.IsEmpty;
            if (r.GetValue(report) is { } path && !Report.ReportWriter.TryWrite("layout", path, () => new Report.HtmlReport("hmmsim layout").Layouts(configs[0]), stderr))
                return 2;
            return Execute(configs, r.GetValue(svg), r.GetValue(json), stdout, stderr, seedVm);
        });
        return cmd;
    }

    /// <summary>Parses and runs `layout` with its arguments, writing to the given writers; a parse
    /// error is one message and exit code 2. Program.Main and the tests both come through here.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        var cmd = Create(stdout, stderr);
        var parsed = cmd.Parse(args);
        if (parsed.Errors.Count > 0)
            return Fail(stderr, parsed.Errors[0].Message);
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"hmmsim layout: {message}");
        return 2;
    }

    /// <summary>The machine configurations the options describe, one per design.</summary>
    public static bool TryConfigs(string archText, string bitsText, string ramText, IReadOnlyList<string> windows, string designText,
        out List<MachineConfig> configs, out string error)
    {
        configs = [];
        error = "";
        if (!Enum.TryParse<Architecture>(archText, ignoreCase: true, out var a) || !Enum.IsDefined(a) || int.TryParse(archText, out _))
        {
            error = $"--arch must be X86_64 or Arm64, not '{archText}'";
            return false;
        }
        int maxBits = Machine.MaxPhysmemBits(a);
        if (!int.TryParse(bitsText, out int bits) || bits < 32 || bits > maxBits)
        {
            error = $"--phys-bits must be a number from 32 to {maxBits} on {a}, not '{bitsText}'";
            return false;
        }
        ulong space = 1UL << bits;
        if (!Units.TryParseSize(ramText, out ulong ramBytes) || ramBytes < 64UL << 20 || ramBytes % (4UL << 20) != 0 || ramBytes > space || ramBytes > 1UL << 44)
        {
            error = $"--ram must be a multiple of 4 MiB from 64 MiB to {Units.Human(Math.Min(space, 1UL << 44))} (e.g. 8GiB), not '{ramText}'";
            return false;
        }
        var pci = new List<PhysicalRange>();
        if (windows.Count == 0)
        {
            if (ramBytes < space)
                pci.Add(SeedMachines.PciWindowAboveRam(ramBytes, bits));
        }
        else if (!(windows.Count == 1 && windows[0].Equals("none", StringComparison.OrdinalIgnoreCase)))
        {
            foreach (var w in windows)
            {
                var parts = w.Split(':');
                if (parts.Length != 2 || !Units.TryParseSize(parts[0], out ulong start) || !Units.TryParseSize(parts[1], out ulong length) || length == 0)
                {
                    error = $"--pci-window must be start:length with a non-zero length (e.g. 8GiB:1TiB), not '{w}'";
                    return false;
                }
                if (start < ramBytes || start > space || length > space - start)
                {
                    error = $"--pci-window {w} must lie above RAM ({Units.Human(ramBytes)}) and inside the {bits}-bit physical address space";
                    return false;
                }
                if (pci.Any(p => start < p.Start + p.Length && p.Start < start + length))
                {
                    error = $"--pci-window {w} overlaps another window";
                    return false;
                }
                pci.Add(new PhysicalRange(start, length));
            }
        }
        if (CliOptions.ParseDesigns(designText) is not { } designs)
        {
            error = $"--design must be today, redesign or both (or PhysicalAddressSpace, DeviceAddressSpace), not '{designText}'";
            return false;
        }
        configs = [.. designs.Select(d => new MachineConfig { Architecture = a, PhysicalAddressBits = bits, RamBytes = ramBytes, PciWindows = pci, DevicePrivateDesign = d })];
        return true;
    }

    private static int Execute(List<MachineConfig> configs, string? svgPath, bool json, TextWriter stdout, TextWriter stderr, bool seedVm = false)
    {
        List<MachineLayout> layouts;
        try
        {
            layouts = [.. configs.Select(MachineLayout.Capture)];
        }
        catch (ArgumentException e)
        {
            return Fail(stderr, e.Message);
        }
        if (svgPath is not null)
        {
            try
            {
                File.WriteAllText(svgPath, LayoutSvg.Render(layouts));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                return Fail(stderr, $"cannot write --svg {svgPath}: {e.Message}");
            }
        }
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(layouts.Select(l => new
            {
                design = l.Design.ToString(),
                architecture = l.Config.Architecture.ToString(),
                physicalAddressBits = l.Config.PhysicalAddressBits,
                ramBytes = l.Config.RamBytes,
                pciWindows = l.Config.PciWindows.Select(w => new { start = w.Start, length = w.Length }),
                probed = l.Probed,
                failures = l.Failures,
                iomem = l.Iomem,
                physical = l.Physical.Select(Range),
                bars = l.Bars.Select(Range),
                devicePrivate = l.DevicePrivate is { } dp
                    ? new { limitBytes = l.DevicePrivateLimit, ranges = dp.Select(Range) }
                    : null,
            })));
            return 0;
        }
        foreach (var l in layouts)
        {
            stdout.WriteLine($"== {LayoutSvg.DesignTitle(l.Design)} ==");
            stdout.WriteLine($"machine: {LayoutSvg.Describe(l.Config)}" + (seedVm ? " (the seeds' VM: layout's default, not the library's 46-bit default machine)" : ""));
            stdout.WriteLine($"dmirror units probed: {(l.Probed.Count == 0 ? "none" : string.Join(", ", l.Probed))}");
            foreach (var f in l.Failures)
                stdout.WriteLine($"  dmesg: {f}");
            stdout.WriteLine("/proc/iomem:");
            stdout.Write(l.Iomem.EndsWith('\n') || l.Iomem.Length == 0 ? l.Iomem : l.Iomem + "\n");
            if (l.DevicePrivate is { } dp)
            {
                stdout.WriteLine($"device-private address space [0x0, {Units.Hex(l.DevicePrivateLimit)}) ({Units.Human(l.DevicePrivateLimit)}; offsets in pages):");
                var maps = dp.Where(r => r.Kind != LayoutKind.Free).ToList();
                if (maps.Count == 0)
                    stdout.WriteLine("  (no pagemaps)");
                foreach (var r in maps)
                {
                    stdout.WriteLine($"  {Units.Hex(r.Start >> Arch.PageShift)}-{Units.Hex((r.End >> Arch.PageShift) - 1)} : {r.Name} (bytes {Units.Hex(r.Start)}-{Units.Hex(r.End - 1)}, {Units.Human(r.Size)})");
                }
            }
            else
            {
                stdout.WriteLine($"device-private address space: {MachineLayout.NoDevicePrivateSpace}");
            }
            stdout.WriteLine();
        }
        if (svgPath is not null)
            stdout.WriteLine($"wrote {svgPath}");
        return 0;
    }

    private static object Range(LayoutRange r) => new { name = r.Name, kind = r.Kind.ToString(), start = r.Start, end = r.End, size = r.Size };
}
