namespace CloudMirrorFs.Facets;

/// <summary>A facet that wraps another (a link, a rate limit, a fault injector): lets the engine reach the facet underneath.</summary>
public interface IFacetDecorator : IDecorator<IFacet>
{
    /// <summary>The innermost facet under any number of decorators.</summary>
    new static IFacet Unwrap(IFacet facet) => IDecorator<IFacet>.Unwrap(facet);
}
