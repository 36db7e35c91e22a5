using CloudMirrorFs.Options;

namespace CloudMirrorFs.Facets;

/// <summary>Builds facets from their configuration. Kinds this build cannot serve are refused with a clear message.</summary>
public static class FacetFactory
{
    /// <summary>Creates the facet a configuration entry describes.</summary>
    public static IFacet Create(FacetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Kind switch
        {
            "directory" => new DirectoryFacet(options.Name, options.Path
                ?? throw new MirrorException(MirrorError.InvalidArgument, $"facet '{options.Name}': kind 'directory' needs a 'path'"),
                !options.Settings.TryGetValue("createIfMissing", out string? c) || !string.Equals(c, "false", StringComparison.OrdinalIgnoreCase)),
            _ => throw new MirrorException(MirrorError.NotSupported,
                $"facet '{options.Name}': kind '{options.Kind}' is not available in this build; use kind 'directory' (a folder on another disk) for now"),
        };
    }
}
