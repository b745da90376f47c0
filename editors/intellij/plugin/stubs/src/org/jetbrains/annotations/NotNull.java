/*
 * COMPILE-ONLY STAND-IN: not the IntelliJ Platform, never shipped, never run.
 * It declares only what editors/intellij/plugin uses, with the real package,
 * name and signatures of the public API of IntelliJ Platform 2024.2 (242).
 * Not re-read while writing this stand-in: members as the platform declares them in
 * org.jetbrains:annotations (JetBrains/java-annotations, NotNull.java), as the glue already used them.
 */
package org.jetbrains.annotations;

@java.lang.annotation.Documented
@java.lang.annotation.Retention(java.lang.annotation.RetentionPolicy.CLASS)
@java.lang.annotation.Target({java.lang.annotation.ElementType.METHOD, java.lang.annotation.ElementType.FIELD,
        java.lang.annotation.ElementType.PARAMETER, java.lang.annotation.ElementType.LOCAL_VARIABLE,
        java.lang.annotation.ElementType.TYPE_USE})
public @interface NotNull {}
