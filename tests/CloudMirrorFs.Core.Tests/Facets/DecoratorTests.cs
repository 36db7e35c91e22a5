using System.Reflection;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Tests.Facets;

/// <summary>
/// <see cref="IFacet"/> gives some members a default body (commits, give-ups, collection) that facets edited in place
/// need not write. A facet that wraps another must pass every one of them on: the default would do nothing, silently,
/// for the object store underneath. The tests' fault injector once dropped three of them, which hid a product bug.
/// </summary>
[TestClass]
public sealed class DecoratorTests
{
    [TestMethod]
    public void EveryFacetThatWrapsAnother_PassesOnEveryMemberThatHasADefault()
    {
        Type[] wrappers = [.. new[] { typeof(IFacet).Assembly, typeof(FaultInjectingFacet).Assembly }
            .SelectMany(a => a.GetTypes())
            .Where(t => t.IsClass && typeof(IFacet).IsAssignableFrom(t) && typeof(IFacetDecorator).IsAssignableFrom(t))];
        Assert.IsTrue(wrappers.Length >= 4, $"found {wrappers.Length} wrappers: {string.Join(", ", wrappers.Select(t => t.Name))}");
        var defaults = typeof(IFacet).GetMethods().Where(m => !m.IsAbstract).ToList();
        Assert.IsTrue(defaults.Count >= 4, "IFacet's members with a default body");
        var missing = new List<string>();
        foreach (Type t in wrappers)
        {
            InterfaceMapping map = t.GetInterfaceMap(typeof(IFacet));
            for (int i = 0; i < map.InterfaceMethods.Length; i++)
            {
                if (defaults.Contains(map.InterfaceMethods[i]) && map.TargetMethods[i].DeclaringType == typeof(IFacet))
                {
                    missing.Add($"{t.Name}.{map.InterfaceMethods[i].Name}");
                }
            }
        }
        Assert.AreEqual(0, missing.Count, "left to IFacet's default, so not passed on: " + string.Join(", ", missing));
    }
}
