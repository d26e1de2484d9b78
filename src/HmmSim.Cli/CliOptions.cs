using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using HmmSim.Cli.Layout;

namespace HmmSim.Cli;

/// <summary>The one option vocabulary every verb shares: <c>--design today|redesign|both</c>, sizes
/// with units, <c>--report</c>, <c>--json</c>, <c>--set key=value</c>.</summary>
internal static class CliOptions
{
    public const string DesignHelp = "today (PhysicalAddressSpace), redesign (DeviceAddressSpace) or both.";

    /// <summary><c>--design</c>: parsed at the command line, so a bad value is a parse error (exit 2).</summary>
    public static Option<DevicePrivateDesign[]> Design(string defaultValue) => new("--design")
    {
        Description = DesignHelp + $" Default: {defaultValue}.",
        DefaultValueFactory = _ => ParseDesigns(defaultValue)!,
        CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : defaultValue;
            if (ParseDesigns(text) is { } designs)
                return designs;
            r.AddError($"--design must be today, redesign or both (or PhysicalAddressSpace, DeviceAddressSpace), not '{text}'");
            return [];
        },
    };

    /// <summary>today/redesign/both, or the enum names, case-insensitive; null when none matches.</summary>
    public static DevicePrivateDesign[]? ParseDesigns(string text) => text.Trim().ToLowerInvariant() switch
    {
        "both" => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace],
        "today" or "physicaladdressspace" => [DevicePrivateDesign.PhysicalAddressSpace],
        "redesign" or "deviceaddressspace" => [DevicePrivateDesign.DeviceAddressSpace],
        _ => null,
    };

    /// <summary>A size with a unit (256MiB, 8GiB, 0x1000, 2^30), range-checked at parse time, so an
    /// overflowing or out-of-range value is one clear parse error rather than a type name.</summary>
    public static Option<ulong> Size(string name, string description, ulong defaultBytes, ulong min, ulong max, ulong multiple = 1)
    {
        var option = new Option<ulong>(name)
        {
            Description = $"{description} With a unit: e.g. {Units.Human(defaultBytes).Replace(" ", "", StringComparison.Ordinal)} (default), 0x..., 2^N.",
            DefaultValueFactory = _ => defaultBytes,
        };
        option.CustomParser = r => ParseSize(r, name, min, max, multiple, shift: 0);
        return option;
    }

    /// <summary>An old integer-in-a-unit flag (--size-mib) kept as a hidden alias of a size option.</summary>
    public static Option<ulong> LegacySize(string name, int shift, ulong min, ulong max, ulong multiple = 1)
    {
        var option = new Option<ulong>(name) { Hidden = true };
        option.CustomParser = r => ParseSize(r, name, min, max, multiple, shift);
        return option;
    }

    private static ulong ParseSize(ArgumentResult r, string name, ulong min, ulong max, ulong multiple, int shift)
    {
        string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
        string range = $"from {Units.Human(min)} to {Units.Human(max)}" + (multiple > 1 ? $", a multiple of {Units.Human(multiple)}" : "");
        ulong bytes;
        if (shift == 0 ? !Units.TryParseSize(text, out bytes) : !ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out bytes) || bytes > ulong.MaxValue >> shift)
        {
            r.AddError($"{name} '{text}' is not a size that fits in 64 bits (give a size {range}, e.g. 256MiB)");
            return 0;
        }
        bytes <<= shift;
        if (bytes < min || bytes > max || bytes % multiple != 0)
            r.AddError($"{name} {text} is out of range: give a size {range}");
        return bytes;
    }

    /// <summary>The size an option pair names: the hidden legacy alias when given, else the unit option.</summary>
    public static ulong SizeValue(ParseResult r, Option<ulong> size, Option<ulong> legacy) =>
        r.GetResult(legacy) is { Implicit: false } ? r.GetValue(legacy) : r.GetValue(size);

    public static Option<bool> Json(string what = "Print one JSON object (schema in docs/cli.md) instead of text.") => new("--json") { Description = what };

    public static Option<string?> Report() =>
        new("--report") { Description = "Also write a self-contained HTML report (tables, charts, layouts) to this file." };

    /// <summary>"x86-64, 46-bit physical, 8 GiB RAM, today": the machine a result ran on, for every output.</summary>
    public static string Describe(MachineConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return $"{(c.Architecture == Architecture.Arm64 ? "arm64" : "x86-64")}, {c.PhysicalAddressBits}-bit physical, {Units.Human(c.RamBytes)} RAM, "
            + (c.PciWindows.Count == 0 ? "no PCI window" : string.Join(", ", c.PciWindows.Select(w => $"PCI window {Units.Human(w.Length)} at {Units.Hex(w.Start)}")));
    }

    /// <summary>today/redesign with the enum name, as outputs print a design.</summary>
    public static string Name(DevicePrivateDesign d) => d == DevicePrivateDesign.PhysicalAddressSpace ? "today (PhysicalAddressSpace)" : "redesign (DeviceAddressSpace)";
}

/// <summary>The computer a measurement ran on, named in every bench output.</summary>
internal static class HostInfo
{
    private static readonly Lazy<string> _cpu = new(() =>
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is >= 0 and var i)
                    return line[(i + 1)..].Trim();
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString();
    });

    /// <summary>"2 cores, Linux 6.1 ..., .NET 10.0.0, CPU AMD EPYC ...".</summary>
    public static string Describe() =>
        $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}, CPU {_cpu.Value}";
}
