# R code that reproduces the reference numbers pinned in tests/stats/ (documentation; the
# tests do not run R). Packages: psych, rmcorr (>= 0.5.4), lme4, geepack.

library(psych)
library(rmcorr)
library(lme4)

## Shrout & Fleiss (1979): ../shared/reference/shrout_fleiss_1979.csv -> test_icc.py
sf <- read.csv("../shared/reference/shrout_fleiss_1979.csv")
print(ICC(sf[, -1], alpha = 0.05), digits = 10)       # ICC1..ICC3k, F, df1, df2, p, CIs
aov2 <- aov(score ~ factor(target) + factor(judge),
            data = reshape(sf, direction = "long", varying = 2:5, v.names = "score",
                           timevar = "judge", idvar = "target"))
mse <- summary(aov2)[[1]]["Residuals", "Mean Sq"]
sqrt(mse)                                           # SEM = 1.0096754
100 * sqrt(mse) / mean(as.matrix(sf[, -1]))         # CV = 19.0805 %

## Bland & Altman (1986) peak flow: ../shared/reference/pefr_bland_altman_1986.csv
pefr <- read.csv("../shared/reference/pefr_bland_altman_1986.csv")
d <- pefr$wright1 - pefr$mini1
n <- length(d); s <- sd(d); z <- 1.96; tq <- qt(0.975, n - 1)
c(mean(d), s, mean(d) - z * s, mean(d) + z * s)     # bias, SD, limits
mean(d) + c(-1, 1) * tq * s / sqrt(n)               # CI of the bias
sqrt(3 * s^2 / n)                                   # approx SE of a limit (1986)
s * sqrt(1 / n + z^2 / (2 * (n - 1)))               # exact-variance SE of a limit (1999)
lim <- mean(d) + s * qt(c(0.025, 0.975), n - 1, ncp = z * sqrt(n)) / sqrt(n)  # Carkeet 2015
dw <- pefr$wright2 - pefr$wright1
c(mean(dw), sd(dw) / sqrt(2))                       # change in mean, typical error
ICC(pefr[, c("wright1", "wright2")])                # ICC(C,1) 0.9830458, ICC(A,1) 0.9831640

## rmcorr on Bland & Altman (1995): tests/stats/data/bland1995.csv -> test_rmcorr.py
rmcorr(as.factor(Subject), pH, PaCO2, bland1995)    # r -0.5067697, df 38, p 0.0008471081,
                                                    # 95% CI -0.7067146 -0.2318631

## lme4 Pastes (Bates 2010, ch. 2): tests/stats/data/pastes.csv -> test_mixed.py
fm <- lmer(strength ~ 1 + (1 | batch) + (1 | sample), Pastes, REML = TRUE)
summary(fm)   # sample:batch 8.434, batch 1.657, residual 0.678; intercept 60.0533 (0.6769)

## dietox (geepack), the numbers in statsmodels' test_lme.py -> test_mixed.py
data(dietox, package = "geepack")
m1 <- lmer(Weight ~ Time + (1 | Pig), data = dietox)
m2 <- lmer(Weight ~ Time + (1 + Time | Pig), data = dietox)
fixef(m2); sqrt(diag(vcov(m2))); as.numeric(VarCorr(m2)[[1]]); attr(VarCorr(m2), "sc")^2
logLik(m1); logLik(m2)
