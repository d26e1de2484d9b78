using System.CommandLine;
using System.Globalization;
using System.Reflection;
using HmmSim.Cli.Layout;

namespace HmmSim.Cli;

/// <summary><c>--set key=value</c>, the simulator-style override of the machine a verb boots:
/// machine.physicalAddressBits=43, machine.ramBytes=8GiB, machine.architecture=Arm64,
/// machine.design=today|redesign|both, machine.thp=Always, machine.seed=7, machine.checkInvariants=false,
/// machine.hugetlbPages=0, machine.pciWindow=none|above-ram, variants.Zone=... (any
/// <see cref="DesignVariants"/> property). Keys are case-insensitive. Every override is checked when
/// parsed; the resulting machine is checked by the library's own rules before anything boots.</summary>
internal sealed class MachineOverrides
{
    private readonly List<Func<MachineConfig, MachineConfig>> _apply = [];

    /// <summary>The designs machine.design names, or null when not overridden.</summary>
    public DevicePrivateDesign[]? Designs { get; private set; }

    public bool IsEmpty => _apply.Count == 0 && Designs is null;

    public static Option<string[]> Option() => new("--set")
    {
        Description = "Override the machine: key=value, repeatable (machine.physicalAddressBits=43, machine.ramBytes=8GiB, machine.design=both, machine.pciWindow=above-ram, variants.Zone=...). See docs/cli.md.",
        AllowMultipleArgumentsPerToken = false,
    };

    public MachineConfig Apply(MachineConfig config)
    {
        foreach (var f in _apply)
            config = f(config);
        return config;
    }

    /// <summary>Parses every key=value; false with one message on the first bad one.</summary>
    public static bool TryParse(IReadOnlyList<string>? items, out MachineOverrides overrides, out string error)
    {
        overrides = new MachineOverrides();
        error = "";
        foreach (var item in items ?? [])
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"--set '{item}': expected key=value, e.g. machine.physicalAddressBits=43";
                return false;
            }
            string key = item[..eq].Trim(), value = item[(eq + 1)..].Trim();
            if (!overrides.TryAdd(key, value, out error))
            {
                error = $"--set {key}={value}: {error}";
                return false;
            }
        }
        return true;
    }

    private bool TryAdd(string key, string value, out string error)
    {
        error = "";
        switch (key.ToLowerInvariant())
        {
            case "machine.physicaladdressbits":
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int bits) || bits is < 32 or > 52)
                    return Bad("a number of bits from 32 to 52", out error);
                _apply.Add(c => c with { PhysicalAddressBits = bits, PciWindows = KeepAboveRam(c, bits, c.RamBytes) });
                return true;
            case "machine.rambytes":
                if (!Units.TryParseSize(value, out ulong ram))
                    return Bad("a size such as 8GiB", out error);
                _apply.Add(c => c with { RamBytes = ram, PciWindows = KeepAboveRam(c, c.PhysicalAddressBits, ram) });
                return true;
            case "machine.architecture":
                if (!Enum.TryParse<Architecture>(value, ignoreCase: true, out var arch) || !Enum.IsDefined(arch) || char.IsAsciiDigit(value[0]))
                    return Bad("X86_64 or Arm64", out error);
                _apply.Add(c => c with { Architecture = arch });
                return true;
            case "machine.design":
                Designs = CliOptions.ParseDesigns(value);
                return Designs is not null || Bad("today, redesign or both", out error);
            case "machine.thp":
                if (!Enum.TryParse<ThpPolicy>(value, ignoreCase: true, out var thp) || !Enum.IsDefined(thp) || char.IsAsciiDigit(value[0]))
                    return Bad(string.Join(", ", Enum.GetNames<ThpPolicy>()), out error);
                _apply.Add(c => c with { Thp = thp });
                return true;
            case "machine.seed":
                if (!ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed))
                    return Bad("a non-negative integer", out error);
                _apply.Add(c => c with { Seed = seed });
                return true;
            case "machine.hugetlbpages":
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int pages))
                    return Bad("a non-negative integer", out error);
                _apply.Add(c => c with { HugetlbPages = pages });
                return true;
            case "machine.checkinvariants":
                if (!bool.TryParse(value, out bool check))
                    return Bad("true or false", out error);
                _apply.Add(c => c with { CheckInvariants = check });
                return true;
            case "machine.pciwindow":
                if (value.Equals("none", StringComparison.OrdinalIgnoreCase))
                    _apply.Add(c => c with { PciWindows = [] });
                else if (value.Equals("above-ram", StringComparison.OrdinalIgnoreCase))
                    _apply.Add(c => c with { PciWindows = [Workloads.SeedMachines.PciWindowAboveRam(c.RamBytes, c.PhysicalAddressBits)] });
                else
                    return Bad("none or above-ram", out error);
                return true;
        }
        if (key.StartsWith("variants.", StringComparison.OrdinalIgnoreCase))
        {
            string name = key["variants.".Length..];
            var prop = typeof(DesignVariants).GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (prop is null || !prop.PropertyType.IsEnum || !prop.CanWrite)
            {
                error = $"unknown variant; known: {string.Join(", ", typeof(DesignVariants).GetProperties().Where(p => p.PropertyType.IsEnum).Select(p => p.Name))}";
                return false;
            }
            if (!Enum.TryParse(prop.PropertyType, value, ignoreCase: true, out object? v) || !Enum.IsDefined(prop.PropertyType, v!) || char.IsAsciiDigit(value[0]))
                return Bad(string.Join(", ", Enum.GetNames(prop.PropertyType)), out error);
            _apply.Add(c =>
            {
                // DesignVariants is an immutable record: copy it, then set the one property on the copy.
                var copy = c.Variants with { };
                prop.SetValue(copy, v);
                return c with { Variants = copy };
            });
            return true;
        }
        error = "unknown key; known: machine.physicalAddressBits, machine.ramBytes, machine.architecture, machine.design, machine.thp, machine.seed, machine.hugetlbPages, machine.checkInvariants, machine.pciWindow, variants.<Name>";
        return false;
    }

    private static bool Bad(string expected, out string error)
    {
        error = $"expected {expected}";
        return false;
    }

    /// <summary>A PCI window that ran from the end of RAM to the top of the physical space keeps doing
    /// so when the width or the RAM size changes (the seeds' VM's shape); other windows stay.</summary>
    private static IReadOnlyList<PhysicalRange> KeepAboveRam(MachineConfig c, int bits, ulong ram)
    {
        var above = Workloads.SeedMachines.PciWindowAboveRam(c.RamBytes, c.PhysicalAddressBits);
        if (c.PciWindows.Count == 1 && c.PciWindows[0] == above)
            return ram < 1UL << bits ? [Workloads.SeedMachines.PciWindowAboveRam(ram, bits)] : [];
        return c.PciWindows;
    }

    /// <summary>The library's own check of a configuration (what <see cref="Machine"/>'s constructor
    /// throws), as a message without the parameter name; null when the machine can boot.</summary>
    public static string? Check(MachineConfig config)
    {
        try
        {
            Machine.Validate(config);
            return null;
        }
        catch (ArgumentException e)
        {
            return e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
        }
    }
}
