using System.Reflection;

namespace HmmSim.Cli.Explore;

/// <summary>The switches of <see cref="DesignVariants"/> by name, for `--variant Name=Value,...` and a
/// scenario's `machine.variants`. Read from the record's properties, so a switch added there is
/// known here without a list to keep in step.</summary>
internal static class VariantSwitches
{
    /// <summary>The only switch that means something under today's design (see Machine's validation).</summary>
    private const string TodaySwitch = nameof(DesignVariants.PgmapPlacement);

    private static readonly PropertyInfo[] _switches = typeof(DesignVariants)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.PropertyType.IsEnum && p.CanWrite)
        .OrderBy(p => p.MetadataToken)
        .ToArray();

    /// <summary>Switch names in declaration order.</summary>
    public static IReadOnlyList<string> Names { get; } = _switches.Select(p => p.Name).ToArray();

    /// <summary>"Name=A|B, ..." for error messages.</summary>
    public static string Valid => string.Join(", ", _switches.Select(p => $"{p.Name}={string.Join('|', Enum.GetNames(p.PropertyType))}"));

    /// <summary>A copy of <paramref name="variants"/> with one switch set; false with the reason when
    /// the name or value is unknown.</summary>
    public static bool TrySet(DesignVariants variants, string name, string value, out DesignVariants result, out string? error)
    {
        ArgumentNullException.ThrowIfNull(variants);
        result = variants;
        var prop = _switches.FirstOrDefault(p => string.Equals(p.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
        if (prop is null)
        {
            error = $"unknown variant switch \"{name.Trim()}\"; valid: {Valid}";
            return false;
        }
        if (!Enum.TryParse(prop.PropertyType, value.Trim(), ignoreCase: true, out var parsed) || !Enum.IsDefined(prop.PropertyType, parsed!)
            || int.TryParse(value.Trim(), out _))
        {
            error = $"unknown value \"{value.Trim()}\" for {prop.Name}; valid: {string.Join(", ", Enum.GetNames(prop.PropertyType))}";
            return false;
        }
        // A record's init-only setter on a fresh copy: the record itself stays immutable.
        var copy = variants with { };
        prop.SetValue(copy, parsed);
        result = copy;
        error = null;
        return true;
    }

    /// <summary>Parses "Name=Value,Name=Value" (or "default").</summary>
    public static bool TryParse(string text, out DesignVariants result, out string? error)
    {
        result = new DesignVariants();
        error = null;
        if (string.Equals(text.Trim(), "default", StringComparison.OrdinalIgnoreCase))
            return true;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                error = $"\"{part}\" is not Name=Value; valid: {Valid}";
                return false;
            }
            if (!TrySet(result, part[..eq], part[(eq + 1)..], out result, out error))
                return false;
        }
        if (result.IsDefault && text.Trim().Length == 0)
        {
            error = $"empty --variant; valid: {Valid}";
            return false;
        }
        return true;
    }

    /// <summary>The non-default switches as "Name=Value,..."; "default" when there are none.</summary>
    public static string Describe(DesignVariants variants)
    {
        var parts = NonDefault(variants).Select(p => $"{p.Name}={p.GetValue(variants)}").ToList();
        return parts.Count == 0 ? "default" : string.Join(',', parts);
    }

    /// <summary>The non-default switches and their values, for a scenario's `machine.variants`.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Settings(DesignVariants variants) =>
        NonDefault(variants).Select(p => new KeyValuePair<string, string>(p.Name, p.GetValue(variants)!.ToString()!));

    /// <summary>The four posted forms reviewers found defects in, as "Name=Value" (the other switches
    /// are the open proposals, working designs).</summary>
    public static IReadOnlyList<string> ReviewerVariants { get; } =
    [
        $"{nameof(DesignVariants.SoftleafMigration)}={SoftleafMigrationRule.AsPostedV1}",
        $"{nameof(DesignVariants.HmmPfnLayout)}={HmmPfnLayout.AsPosted}",
        $"{nameof(DesignVariants.RmapMatch)}={RmapMatch.PfnOnly}",
        $"{nameof(DesignVariants.PgmapPlacement)}={PgmapPlacement.PageUnion}",
    ];

    /// <summary>The default, then each switch alone at each of its non-default values.</summary>
    public static IReadOnlyList<DesignVariants> AllSingle()
    {
        var list = new List<DesignVariants> { new() };
        foreach (var p in _switches)
        {
            foreach (var value in Enum.GetValues(p.PropertyType))
            {
                if (Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) == 0)
                    continue;
                var v = new DesignVariants();
                p.SetValue(v, value);
                list.Add(v);
            }
        }
        return list;
    }

    /// <summary>Why these variants cannot run under the design, or null when they can. Mirrors the
    /// check of <c>new Machine</c>: under today's design only the pgmap placement has a meaning.</summary>
    public static string? SkipReason(DesignVariants variants, DevicePrivateDesign design)
    {
        if (design != DevicePrivateDesign.PhysicalAddressSpace)
            return null;
        var meaningless = NonDefault(variants).Where(p => p.Name != TodaySwitch).Select(p => p.Name).ToList();
        return meaningless.Count == 0 ? null
            : $"{string.Join(", ", meaningless)} {(meaningless.Count == 1 ? "changes" : "change")} the redesign's device-private address space; today's design has no such choice (new Machine refuses it)";
    }

    private static IEnumerable<PropertyInfo> NonDefault(DesignVariants variants)
    {
        var defaults = new DesignVariants();
        return _switches.Where(p => !Equals(p.GetValue(variants), p.GetValue(defaults)));
    }
}
