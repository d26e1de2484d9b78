using System.Reflection;

namespace HmmSim.Selftests;

/// <summary>One ported selftest case: a TEST_F of a fixture, for one variant, under one design.
/// <see cref="Name"/> is what `hmmsim selftest` prints: Design.fixture.variant.test.</summary>
public sealed record SelftestCase(string Fixture, string Variant, string Test, DevicePrivateDesign Design, Action Run)
{
    public string Name => $"{Design}.{Fixture}.{Variant}.{Test}";
}

/// <summary>Every ported case of hmm-tests.c, in the file's order, for both designs.</summary>
public static class SelftestCatalog
{
    private static readonly Lazy<IReadOnlyList<SelftestCase>> _all = new(Build);

    private static readonly AsyncLocal<DesignVariants?> _variants = new();

    public static IReadOnlyList<SelftestCase> All => _all.Value;

    /// <summary>Changes the machine every case boots (the CLI's --set overrides); null runs the
    /// selftests on the default machine, as the kernel's run on whatever machine they are on.</summary>
    public static Func<MachineConfig, MachineConfig>? ConfigureMachine { get; set; }

    /// <summary>The design variants the fixtures of the current run boot their machine with.</summary>
    internal static DesignVariants Variants => _variants.Value ?? new DesignVariants();

    /// <summary>Runs a case on machines with the given design variants (`hmmsim explore`); the cases
    /// themselves are unchanged.</summary>
    public static void Run(SelftestCase selftest, DesignVariants variants)
    {
        ArgumentNullException.ThrowIfNull(selftest);
        var old = _variants.Value;
        _variants.Value = variants;
        try
        {
            selftest.Run();
        }
        finally
        {
            _variants.Value = old;
        }
    }

    /// <summary>Runs <paramref name="c"/> with its machines booted under <paramref name="variants"/>, for
    /// the proposals (DeviceAddressSpace cases; today's design has no proposal to switch).</summary>
    public static void RunWith(SelftestCase c, DesignVariants variants)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(variants);
        if (c.Design != DevicePrivateDesign.DeviceAddressSpace && !variants.IsDefault)
            throw new ArgumentException($"{c.Name}: design variants apply to DeviceAddressSpace cases only", nameof(c));
        Run(c, variants);
    }

    public static SelftestCase Find(string name) =>
        All.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"no selftest case named '{name}'", nameof(name));

    private static IReadOnlyList<SelftestCase> Build()
    {
        var cases = new List<SelftestCase>();
        foreach (var design in new[] { DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace })
        {
            Add(cases, "hmm", typeof(HmmTests), HmmFixture.HmmVariants, design);
            Add(cases, "hmm2", typeof(Hmm2Tests), HmmFixture.Hmm2Variants, design);
        }
        return cases;
    }

    private static void Add(List<SelftestCase> cases, string fixture, Type type, IReadOnlyList<string> variants, DevicePrivateDesign design)
    {
        // TEST_F order: the methods as declared, those taking (variant, design).
        var tests = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(m => m.GetParameters() is [{ ParameterType: var a }, { ParameterType: var b }] && a == typeof(string) && b == typeof(DevicePrivateDesign))
            .OrderBy(m => m.MetadataToken)
            .ToList();
        foreach (var variant in variants)
        {
            foreach (var m in tests)
            {
                var method = m;
                cases.Add(new SelftestCase(fixture, variant, method.Name, design, () =>
                {
                    var instance = Activator.CreateInstance(type)!;
                    try
                    {
                        method.Invoke(instance, [variant, design]);
                    }
                    catch (TargetInvocationException e) when (e.InnerException is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
                    }
                }));
            }
        }
    }
}
